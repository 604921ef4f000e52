"""Throughput of zoo models and feature extractors: images/s, latency, FLOPs, utilisation, memory.

``bench_model`` times sampling (the generator's forward pass on fresh latents) or, with ``train=True``,
one full training step (the model's own step, ``ModelEntry.step_function``: the step the training loop runs,
for a GAN a D update and a G update) at several batch sizes; ``bench_extractor`` times a feature extractor on uint8 images. Per batch size a row holds:

- images/s (batch / median latency) and the per-batch latency's median, 10th and 90th percentiles over
  timed repetitions after warm-up, timed by ``ganbench.bench.timer`` (CUDA events, synchronised);
- FLOPs per image (``FlopCounterMode``) and achieved FLOP/s as a fraction of the matrix-product ceiling
  measured in the same run and precision (``ganbench.bench.flops``);
- peak memory (``ganbench.bench.memory``).

Precision (bf16/fp16), ``torch.compile`` and channels_last variants report the relative L2 drift of their
samples from the fp32 eager network's for the same latents, beside their speed, so a faster variant that
changes the images is visible. Sampling in bf16/fp16 casts the network; training uses autocast.

Design follows torch.utils.benchmark and Triton's ``do_bench`` for timing; FLOP conventions follow
fvcore/torch (2 FLOPs per multiply-accumulate).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from ganbench.bench.flops import Ceiling, count_flops, matmul_ceiling
from ganbench.bench.memory import MemoryMeter, hardware
from ganbench.bench.timer import time_region

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_BATCH_SIZES = (1, 8, 64, 256)
STEADY_STEP = 1_000_000_000  # training-step index the bench times model-specific steps at (divisible by 16)


@dataclass(frozen=True)
class BenchSettings:
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    precision: str = "fp32"  # fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the network (compile time reported, not timed)
    channels_last: bool = False
    repeats: int = 10  # timed repetitions per batch size (at least)
    warmup: int = 3  # untimed calls per batch size
    min_seconds: float = 0.3  # keep timing a batch size until its timed calls total this
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if not self.batch_sizes or any(int(b) < 1 for b in self.batch_sizes):
            raise ValueError(f"batch sizes must be positive integers, got {self.batch_sizes}")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {self.repeats} and {self.warmup}")

    @property
    def variant(self) -> str:
        parts = [self.precision] + (["compile"] if self.compile else []) + (["channels_last"] if self.channels_last else [])
        return "+".join(parts)


@dataclass(frozen=True)
class BatchRow:
    batch_size: int
    images_per_s: float  # batch / median latency
    latency_ms: float  # median per-batch latency
    latency_p10_ms: float
    latency_p90_ms: float
    ms_per_image: float  # median latency / batch
    flops_per_image: float
    achieved_tflops: float  # FLOPs per batch / median latency, in TFLOP/s
    utilisation: float  # achieved FLOP/s / measured ceiling
    peak_memory_mb: float
    baseline_memory_mb: float
    repeats: int  # timed repetitions


@dataclass
class BenchReport:
    """Everything one bench run measured, with what it ran on."""

    target: str  # model or extractor name
    kind: str  # "sample", "train" or "extract"
    config: dict[str, Any]
    parameters: dict[str, int]  # network name -> parameter count
    settings: BenchSettings
    ceiling: Ceiling
    rows: list[BatchRow]
    drift: float | None  # relative L2 of the variant's output against fp32 eager; None for plain fp32 eager
    compile_seconds: float | None
    hardware: dict[str, Any]
    memory_method: str
    clock: str
    preset: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA device")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda[:N] or auto, got {device!r}")
    return dev


def _prepare(net: nn.Module, settings: BenchSettings, device: torch.device, cast: bool) -> nn.Module:
    net = net.to(device)
    if cast and settings.precision != "fp32":
        net = net.to(PRECISIONS[settings.precision])
    if settings.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _autocast(settings: BenchSettings, device: torch.device):
    if settings.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[settings.precision])


def _relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _measure(fn: Callable[[int], object], flops_fn: Callable[[], object], batch: int, settings: BenchSettings,
             device: torch.device, ceiling: Ceiling) -> tuple[BatchRow, str, str]:
    flops = count_flops(flops_fn)
    with MemoryMeter(device) as meter:
        timing = time_region(fn, device, settings.repeats, settings.warmup, settings.min_seconds)
    mem = meter.result
    achieved = flops / timing.median
    row = BatchRow(batch, batch / timing.median, timing.median * 1e3, timing.p10 * 1e3, timing.p90 * 1e3,
                   timing.median * 1e3 / batch, flops / batch, achieved / 1e12, achieved / ceiling.flops_per_s,
                   mem.peak_mb, mem.baseline_mb, len(timing.seconds))
    return row, mem.method, timing.clock


def _inputs_pool(make: Callable[[torch.Generator], Any], seed: int, size: int) -> list[Any]:
    """``size`` distinct input sets, so no timed repetition reuses the previous one's (cache-hot) inputs."""
    return [make(torch.Generator().manual_seed(seed * 1000 + i)) for i in range(size)]


def _to(x: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    if isinstance(x, tuple):
        return tuple(_to(t, device, dtype) for t in x)
    if dtype is not None and x.is_floating_point():
        return x.to(device=device, dtype=dtype)
    return x.to(device)


def bench_model(name: str, settings: BenchSettings = BenchSettings(), train: bool = False,
                preset: str | None = None, config: dict[str, Any] | None = None,
                net: nn.Module | None = None, progress: bool = True) -> BenchReport:
    """Time sampling (or one training step) of zoo model ``name`` at each of ``settings.batch_sizes``.

    Args:
        preset: A named config of the entry ("tiny", "paper"); ``config`` overrides fields on top.
        net: A generator network to time instead of a freshly built one (e.g. loaded weights).
    """
    from ganbench.train import TrainConfig
    from ganbench.zoo import StepContext, get_model

    entry = get_model(name)
    cfg = entry.make_config(preset, **(config or {}))
    device = resolve_device(settings.device)
    dtype = PRECISIONS[settings.precision]
    torch.manual_seed(settings.seed)
    G = net if net is not None else entry.build_generator(cfg)
    params = {"generator": sum(p.numel() for p in G.parameters())}
    ceiling = matmul_ceiling(device, dtype)
    notes: list[str] = []
    rows: list[BatchRow] = []
    drift, compile_seconds = None, None
    mem_method = clock = ""
    pool_size = min(settings.warmup + settings.repeats, 8)

    if not train:
        G = _prepare(G.eval(), settings, device, cast=True)
        runner = torch.compile(G) if settings.compile else G
        for batch in tqdm(settings.batch_sizes, desc=f"bench {name}", unit="batch size", file=sys.stderr,
                          disable=not progress, leave=False):
            pool = [_to(x, device, dtype) for x in
                    _inputs_pool(lambda g: entry.example_inputs(cfg, batch, g), settings.seed, pool_size)]

            @torch.inference_mode()
            def call(i: int, pool=pool) -> torch.Tensor:
                return runner(*pool[i % len(pool)])

            if settings.compile and compile_seconds is None:
                t0 = time.perf_counter()
                call(0)
                torch.cuda.synchronize(device) if device.type == "cuda" else None
                compile_seconds = time.perf_counter() - t0
            eager = torch.inference_mode()(lambda pool=pool: G(*pool[0]))  # FlopCounterMode cannot see into compiled graphs
            row, mem_method, clock = _measure(call, eager, batch, settings, device, ceiling)
            rows.append(row)
        if settings.variant != "fp32":
            drift = _sampling_drift(entry, cfg, G if net is None else net, runner, settings, device)
    else:
        if settings.compile and entry.data_kind in ("paired", "unpaired"):
            raise ValueError("translation training steps are benchmarked without --compile")
        torch.manual_seed(settings.seed)
        state = entry.setup_training(cfg, TrainConfig(batch_size=max(settings.batch_sizes)))
        if net is not None and "G" in state.nets:
            state.nets["G"] = net
            state.optimizers["opt_g"] = type(state.optimizers["opt_g"])(net.parameters(),
                                                                         **state.optimizers["opt_g"].defaults)
        for key, module in list(state.nets.items()):
            params[{"G": "generator", "D": "discriminator"}.get(key, key)] = sum(p.numel() for p in module.parameters())
            state.nets[key] = _prepare(module.train(), settings, device, cast=False)
        eager = dict(state.nets)
        run = {k: torch.compile(m) for k, m in eager.items()} if settings.compile else eager
        step_fn = entry.step_function()
        if settings.precision == "fp16":
            notes.append("fp16 training step timed under autocast without a gradient scaler")
        for batch in tqdm(settings.batch_sizes, desc=f"bench {name} train", unit="batch size", file=sys.stderr,
                          disable=not progress, leave=False):
            pool = []
            for i in range(pool_size):
                example = entry.example_batch(cfg, batch, torch.Generator().manual_seed(settings.seed * 1000 + i))
                example = {k: _to(v, device) for k, v in example.items()}
                if settings.channels_last:
                    example = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                               for k, v in example.items()}
                pool.append(example)

            def step(i: int, pool=pool, nets=run, batch=batch) -> None:
                # a step index past any schedule: ProGAN is timed grown to full resolution, SRGAN after its warm-up;
                # a multiple of 16 keeps StyleGAN2's lazy-regularisation phase
                ctx = StepContext(dataclasses.replace(state, nets=nets), pool[i % len(pool)], STEADY_STEP + i,
                                  torch.Generator().manual_seed(i), cfg, TrainConfig(batch_size=batch))
                with _autocast(settings, device):
                    step_fn(ctx)

            if settings.compile and compile_seconds is None:
                t0 = time.perf_counter()
                step(0)
                torch.cuda.synchronize(device) if device.type == "cuda" else None
                compile_seconds = time.perf_counter() - t0
            row, mem_method, clock = _measure(step, lambda step=step: step(0, nets=eager), batch, settings,
                                              device, ceiling)
            rows.append(row)
        if settings.variant != "fp32":
            notes.append("training variants change the arithmetic of every update; drift is reported for sampling only")

    return BenchReport(name, "train" if train else "sample", dataclasses.asdict(cfg), params, settings, ceiling,
                       rows, drift, compile_seconds, hardware(device), mem_method, clock, preset, notes)


@torch.inference_mode()
def _sampling_drift(entry: Any, cfg: Any, original: nn.Module, runner: nn.Module, settings: BenchSettings,
                    device: torch.device) -> float:
    """Relative L2 of the variant's samples against an fp32 eager copy's, same latents."""
    import copy

    reference = copy.deepcopy(original).float().to(device).eval()
    if settings.channels_last:
        reference = reference.to(memory_format=torch.contiguous_format)
    inputs = entry.example_inputs(cfg, min(64, max(settings.batch_sizes)), torch.Generator().manual_seed(settings.seed + 7))
    ref_out = reference(*_to(inputs, device))
    out = runner(*_to(inputs, device, PRECISIONS[settings.precision]))
    return _relative_l2(out.float(), ref_out.float())


def bench_extractor(name: str, settings: BenchSettings = BenchSettings(), image_size: int | None = None,
                    channels: int | None = None, progress: bool = True) -> BenchReport:
    """Time feature extractor ``name`` on uint8 images of ``channels`` x ``image_size`` squared."""
    from ganbench.features import get_extractor

    spec = get_extractor(name)
    if spec.input_kind != "images":
        raise ValueError(f"extractor {name!r} reads {spec.input_kind}; only image extractors are benchmarked")
    digits = name.startswith(("mnist", "stacked"))
    image_size = image_size or (32 if digits else 64)
    channels = channels or (3 if not digits or name.startswith("stacked") else 1)
    device = resolve_device(settings.device)
    dtype = PRECISIONS[settings.precision]
    net = spec.create()
    params = {"extractor": sum(p.numel() for p in net.parameters())}
    reference = None
    if settings.variant != "fp32":
        import copy

        reference = copy.deepcopy(net).eval().to(device)
    # extractors convert uint8 to float themselves, so reduced precision runs under autocast, not a cast
    net = _prepare(net.eval(), settings, device, cast=False)
    runner = torch.compile(net) if settings.compile else net
    ceiling = matmul_ceiling(device, dtype)
    rows, compile_seconds, mem_method, clock = [], None, "", ""
    pool_size = min(settings.warmup + settings.repeats, 8)
    for batch in tqdm(settings.batch_sizes, desc=f"bench {name}", unit="batch size", file=sys.stderr,
                      disable=not progress, leave=False):
        pool = [torch.randint(0, 256, (batch, channels, image_size, image_size), dtype=torch.uint8, generator=g).to(device)
                for g in (torch.Generator().manual_seed(settings.seed * 1000 + i) for i in range(pool_size))]

        @torch.inference_mode()
        def call(i: int, pool=pool) -> object:
            with _autocast(settings, device):
                return runner(pool[i % len(pool)])

        if settings.compile and compile_seconds is None:
            t0 = time.perf_counter()
            call(0)
            compile_seconds = time.perf_counter() - t0
        eager = torch.inference_mode()(lambda pool=pool: net(pool[0]))
        row, mem_method, clock = _measure(call, eager, batch, settings, device, ceiling)
        rows.append(row)
    drift = None
    if reference is not None:
        with torch.inference_mode():
            images = torch.randint(0, 256, (8, channels, image_size, image_size), dtype=torch.uint8,
                                   generator=torch.Generator().manual_seed(settings.seed + 7)).to(device)
            drift = _relative_l2(call_features(runner, images, settings, device), reference(images)[0].float())
    config = {"image_size": image_size, "channels": channels, "input_resize": spec.input_resize}
    return BenchReport(name, "extract", config, params, settings, ceiling, rows, drift, compile_seconds,
                       hardware(device), mem_method, clock)


def call_features(net: nn.Module, images: torch.Tensor, settings: BenchSettings, device: torch.device) -> torch.Tensor:
    """The first (feature) output of an extractor under the settings' precision."""
    with _autocast(settings, device):
        return net(images)[0].float()


def format_table(report: BenchReport) -> str:
    """A plain-text table of a report, with a header naming what ran where."""
    from tabulate import tabulate

    hw = report.hardware
    c = report.ceiling
    head = (f"{report.target} ({report.kind}{', preset ' + report.preset if report.preset else ''}), "
            f"{report.settings.variant} on {hw['device']} [{hw['device_name']}], torch {hw['torch']}, "
            f"{hw['threads']} threads\n"
            f"ceiling: {c.size}x{c.size} {c.dtype} matmul {c.flops_per_s / 1e12:.3f} TFLOP/s"
            f"{' (TF32)' if c.tf32 else ''}; parameters: "
            + ", ".join(f"{k} {v:,}" for k, v in report.parameters.items()))
    if report.drift is not None:
        head += f"\noutput drift against fp32 eager: {report.drift:.2e} relative L2"
    if report.compile_seconds is not None:
        head += f"\ncompile (first call, not timed): {report.compile_seconds:.1f} s"
    rows = [[r.batch_size, f"{r.images_per_s:,.1f}", f"{r.latency_ms:.3f}", f"{r.latency_p10_ms:.3f}",
             f"{r.latency_p90_ms:.3f}", f"{r.ms_per_image:.4f}", f"{r.flops_per_image / 1e6:.2f}",
             f"{r.achieved_tflops * 1e3:.1f}", f"{r.utilisation:.2f}", f"{r.peak_memory_mb:.0f}", r.repeats]
            for r in report.rows]
    table = tabulate(rows, headers=["batch", "img/s", "ms/batch", "p10", "p90", "ms/img", "MFLOP/img",
                                    "GFLOP/s", "util", "peak MB", "runs"])
    tail = f"latency: median (p10, p90) of timed runs by {report.clock}; memory: {report.memory_method}"
    return "\n".join([head, table, tail] + [f"note: {n}" for n in report.notes])


def headline_scores(report: BenchReport) -> dict[str, Any]:
    """The leaderboard columns of a report, as Scores (images/s and utilisation at the largest batch size,
    ms/img at the smallest, peak memory at the largest).

    The spread of images/s is over the timed runs (std of batch / seconds per run), its interval that of
    the 90th and 10th latency percentiles; the FLOP/s utilisation carries the same relative spread.
    """
    from ganbench.results.schema import Score

    largest = max(report.rows, key=lambda r: r.batch_size)
    smallest = min(report.rows, key=lambda r: r.batch_size)
    rel = lambda r: (r.latency_p90_ms - r.latency_p10_ms) / (2 * 1.2816 * r.latency_ms)  # noqa: E731  (p10..p90 of a normal: +-1.28 std)
    method = f"median of timed runs ({report.clock}); std from the p10..p90 latency range"
    b = largest.batch_size
    return {
        "images_per_s": Score(largest.images_per_s, largest.images_per_s * rel(largest),
                              1e3 * b / largest.latency_p90_ms, 1e3 * b / largest.latency_p10_ms, largest.repeats,
                              True, f"{method}; batch {b}"),
        "ms_per_image_b1" if smallest.batch_size == 1 else f"ms_per_image_b{smallest.batch_size}":
            Score(smallest.ms_per_image, smallest.ms_per_image * rel(smallest),
                  smallest.latency_p10_ms / smallest.batch_size, smallest.latency_p90_ms / smallest.batch_size,
                  smallest.repeats, False, f"{method}; batch {smallest.batch_size}"),
        "utilisation": Score(largest.utilisation, largest.utilisation * rel(largest),
                             largest.utilisation * largest.latency_ms / largest.latency_p90_ms,
                             largest.utilisation * largest.latency_ms / largest.latency_p10_ms, largest.repeats, True,
                             f"achieved FLOP/s / measured {report.ceiling.dtype} matmul ceiling; batch {b}"),
        "peak_memory_mb": Score(largest.peak_memory_mb, None, None, None, 1, False,
                                f"{report.memory_method}; batch {b}; one measurement, no spread"),
    }


def to_result(report: BenchReport, run_id: str | None = None, dataset: Any = None, model_name: str | None = None,
              weights_sha256: str | None = None, task: str | None = None) -> Any:
    """A results-store document (kind "bench") for ``report``."""
    from ganbench.results.schema import ModelInfo, SampleInfo, make_result

    variant = report.settings.variant
    run_id = run_id or f"bench-{report.target}-{report.preset or 'custom'}-{report.kind}-{variant}"
    entry = None if report.kind == "extract" else report.target
    if task is None:
        task = "feature_extraction" if report.kind == "extract" else _task_of(report.target)
    samples = SampleInfo(sum(r.repeats * r.batch_size for r in report.rows), "random", seed=report.settings.seed,
                         model=report.target, weights_sha256=weights_sha256)
    timings = {"compile": report.compile_seconds} if report.compile_seconds is not None else {}
    return make_result(run_id, "bench", task, ModelInfo(model_name or report.target, entry, report.config,
                                                        weights_sha256, None),
                       dataset, None, samples, headline_scores(report), timings, bench=report.to_dict(),
                       device=report.hardware["device"])


def _task_of(model: str) -> str:
    from ganbench.zoo import get_model

    return get_model(model).task
