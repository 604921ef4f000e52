"""Throughput bench: FLOP counts against closed forms, timing against a known sleep, every field present."""

import json
import math
import time

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from ganbench.bench import BenchSettings, bench_extractor, bench_model, format_table, to_result
from ganbench.bench.flops import count_flops, matmul_ceiling
from ganbench.bench.memory import MemoryMeter
from ganbench.bench.timer import time_region
from ganbench.cli import main
from ganbench.results.store import read_result, write_result
from ganbench.zoo import get_model

FAST = dict(repeats=3, warmup=1, min_seconds=0.0)


def test_flops_of_single_layers_match_closed_form():
    conv = nn.Conv2d(3, 16, 3, padding=1)
    x = torch.randn(2, 3, 20, 20)
    # 2 FLOPs per multiply-accumulate: N * Cout * H * W * Cin * k * k
    assert count_flops(lambda: conv(x)) == 2 * 2 * 16 * 20 * 20 * 3 * 3 * 3
    lin = nn.Linear(100, 37)
    assert count_flops(lambda: lin(torch.randn(5, 100))) == 2 * 5 * 100 * 37
    convt = nn.ConvTranspose2d(8, 4, 4, 2, 1)  # each input pixel scatters Cin * Cout * k * k MACs
    assert count_flops(lambda: convt(torch.randn(1, 8, 6, 6))) == 2 * 6 * 6 * 8 * 4 * 4 * 4


def test_dcgan64_generator_counts_209_mflop_per_image():
    entry = get_model("dcgan")
    cfg = entry.make_config("paper")
    G = entry.build_generator(cfg).eval()
    # 1x1 -> 4x4 (100 -> 512), three doublings 512 -> 256 -> 128 -> 64, then 64 -> 3 at 64x64
    closed = 2 * (100 * 512 * 16 + 4 * 4 * 512 * 256 * 16 + 8 * 8 * 256 * 128 * 16
                  + 16 * 16 * 128 * 64 * 16 + 32 * 32 * 64 * 3 * 16)
    assert closed == 209_256_448  # 1.6 + 3 x 67.1 + 6.3 MFLOP
    with torch.no_grad():
        assert count_flops(lambda: G(torch.randn(3, 100))) == 3 * closed
    report = bench_model("dcgan", BenchSettings(batch_sizes=(2,), **FAST), preset="paper", progress=False)
    assert report.rows[0].flops_per_image == closed


class SleepNet(nn.Module):
    """A fake generator that takes a known time per batch."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.nz = 100
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return torch.zeros(len(z), 1, 32, 32)


def test_fake_slow_model_images_per_second_within_10_percent():
    per_batch = 0.02
    report = bench_model("dcgan", BenchSettings(batch_sizes=(1, 16), repeats=10, warmup=1, min_seconds=0.0),
                         preset="tiny", net=SleepNet(per_batch), progress=False)
    for row in report.rows:
        truth = row.batch_size / per_batch
        assert abs(row.images_per_s - truth) / truth < 0.10, (row.batch_size, row.images_per_s, truth)
        assert row.latency_p10_ms <= row.latency_ms <= row.latency_p90_ms


def test_time_region_measures_a_known_sleep():
    timing = time_region(lambda i: time.sleep(0.01), torch.device("cpu"), repeats=5, warmup=1)
    assert len(timing.seconds) == 5
    assert 0.0095 < timing.median < 0.013


def test_bench_report_has_every_field_and_round_trips_through_the_store(tmp_path):
    report = bench_model("dcgan", BenchSettings(batch_sizes=(1, 8), **FAST), preset="tiny", progress=False)
    assert [r.batch_size for r in report.rows] == [1, 8]
    for r in report.rows:
        for name in ("images_per_s", "latency_ms", "latency_p10_ms", "latency_p90_ms", "ms_per_image",
                     "flops_per_image", "achieved_tflops", "utilisation", "peak_memory_mb", "repeats"):
            assert math.isfinite(getattr(r, name)) and getattr(r, name) > 0, name
        assert 0 < r.utilisation <= 1.2
        assert r.ms_per_image == pytest.approx(r.latency_ms / r.batch_size)
        assert r.images_per_s == pytest.approx(1e3 * r.batch_size / r.latency_ms)
    assert report.ceiling.flops_per_s > 1e9
    assert report.parameters["generator"] == 369_600
    for key in ("device", "device_name", "torch", "threads", "cpu"):
        assert report.hardware[key]
    assert "cpu" in format_table(report)
    path = write_result(to_result(report), tmp_path)
    back = read_result(path)
    assert back.kind == "bench" and back.dataset is None
    assert back.scores["images_per_s"].value == pytest.approx(report.rows[-1].images_per_s)
    assert back.scores["ms_per_image_b1"].value == pytest.approx(report.rows[0].ms_per_image)
    assert back.bench["rows"][0]["batch_size"] == 1
    assert path.name.endswith(f"__fp32-cpu-torch{torch.__version__.split('+')[0]}.json")


def test_training_step_counts_more_than_three_forward_passes():
    entry = get_model("dcgan")
    cfg = entry.make_config("tiny")
    G, D = entry.build_generator(cfg), entry.build_discriminator(cfg)
    with torch.no_grad():
        g = count_flops(lambda: G(torch.randn(1, cfg.nz)))
        d = count_flops(lambda: D(torch.randn(1, 1, 32, 32)))
    report = bench_model("dcgan", BenchSettings(batch_sizes=(4,), **FAST), preset="tiny", train=True, progress=False)
    per_image = report.rows[0].flops_per_image
    # forward: G once, D three times; backward: about twice each forward that needs gradients
    assert g + 3 * d < per_image < 3 * (g + 3 * d)
    assert report.parameters == {"generator": sum(p.numel() for p in G.parameters()),
                                 "discriminator": sum(p.numel() for p in D.parameters())}


def test_precision_variant_reports_its_drift():
    plain = bench_model("dcgan", BenchSettings(batch_sizes=(4,), **FAST), preset="tiny", progress=False)
    assert plain.drift is None
    cl = bench_model("dcgan", BenchSettings(batch_sizes=(4,), channels_last=True, **FAST), preset="tiny", progress=False)
    assert cl.drift is not None and cl.drift < 1e-5  # same arithmetic, another memory layout
    bf16 = bench_model("dcgan", BenchSettings(batch_sizes=(4,), precision="bf16", **FAST), preset="tiny", progress=False)
    assert 1e-4 < bf16.drift < 0.1  # bfloat16 keeps 8 bits of mantissa: visible, bounded drift


def test_memory_meter_sees_a_large_allocation():
    with MemoryMeter(torch.device("cpu")) as m:
        x = torch.ones(64 * 2 ** 20 // 4 * 4)  # 256 MiB, touched
        del x
    assert m.result.peak_mb - m.result.baseline_mb > 200


def test_matmul_ceiling_is_plausible_on_cpu():
    c = matmul_ceiling(torch.device("cpu"), torch.float32, size=256, repeats=3)
    assert 1e8 < c.flops_per_s < 1e13 and c.dtype == "float32" and not c.tf32


def test_bad_settings_are_refused_with_the_value():
    with pytest.raises(ValueError, match="precision"):
        BenchSettings(precision="fp8")
    with pytest.raises(ValueError, match="batch sizes"):
        BenchSettings(batch_sizes=(0,))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            bench_model("dcgan", BenchSettings(device="cuda"), preset="tiny", progress=False)


def test_extractor_bench_counts_the_digit_cnn():
    report = bench_extractor("mnist_cnn", BenchSettings(batch_sizes=(16,), **FAST), progress=False)
    assert report.kind == "extract" and report.rows[0].images_per_s > 0
    assert report.rows[0].flops_per_image > 1e6


def test_cli_bench_writes_a_result_and_eval_dry_run_estimates(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["bench", "dcgan", "--preset", "tiny", "--batch-sizes", "1,4", "--repeats", "2",
                               "--warmup", "1", "--out", str(tmp_path / "res"), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert [r["batch_size"] for r in doc["rows"]] == [1, 4]
    assert len(list((tmp_path / "res").glob("*.json"))) == 1
    bad = runner.invoke(main, ["bench", "dcgan", "--batch-sizes", "1,x"])
    assert bad.exit_code != 0 and "--batch-sizes" in bad.output
    from ganbench.zoo import untrained_generator

    weights = tmp_path / "g.safetensors"
    untrained_generator("dcgan", **get_model("dcgan").presets["tiny"]).save(weights)
    dry = runner.invoke(main, ["eval", str(weights), "--dataset", "mnist", "-n", "500", "--dry-run",
                               "--out", str(tmp_path / "none")])
    assert dry.exit_code == 0, dry.output
    assert "rate sample" in dry.stdout and "rate features" in dry.stdout and "total" in dry.stdout
    assert not (tmp_path / "none").exists()  # a dry run writes nothing


@pytest.mark.gpu
def test_cuda_bench_synchronises_and_reports_device():
    report = bench_model("dcgan", BenchSettings(device="cuda", batch_sizes=(64,), **FAST), preset="paper",
                         progress=False)
    assert report.clock == "cuda events"
    assert report.hardware["device_name"] and report.hardware["cuda"]
    assert 0 < report.rows[0].utilisation <= 1.2


def test_model_training_steps_are_timed_past_their_schedules(monkeypatch):
    """ProGAN's step grows the networks with the step index: the bench must time the full-resolution step, not 4x4."""
    import dataclasses

    import ganbench.zoo
    from ganbench.bench import STEADY_STEP
    from ganbench.zoo.progan import PROGAN, progan_step

    seen = []
    assert PROGAN.step_function() is progan_step  # the step the bench times is the one the loop trains with

    def recording(ctx):
        row = progan_step(ctx)
        seen.append((ctx.step, row["resolution"], row["alpha"]))
        return row

    recorded, lookup = dataclasses.replace(PROGAN, train_step=recording), ganbench.zoo.get_model
    monkeypatch.setattr(ganbench.zoo, "get_model", lambda name: recorded if name == "progan" else lookup(name))
    micro = dict(resolution=16, channels=1, nz=8, fmap_base=32, fmap_max=8, mbstd_group=2, stable_steps=3,
                 fade_steps=3)
    bench_model("progan", BenchSettings(batch_sizes=(2,), repeats=1, warmup=0, min_seconds=0.0), train=True,
                config=micro, progress=False)
    assert seen and all(step >= STEADY_STEP and (res, alpha) == (16, 1.0) for step, res, alpha in seen)
    assert STEADY_STEP % 16 == 0  # StyleGAN2's lazy R1 (every 16 steps) keeps its phase
