"""Perceptual path length: the maths (ganbench.metrics.ppl) against closed forms and torch-fidelity's calculate_ppl on a
shared generator, and the task glue (ganbench.tasks.unconditional) on zoo generators, opt-in only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganbench.metrics import ppl
from ganbench.metrics.ppl import PathLengthConfig, lerp, path_endpoints, path_lengths, perceptual_path_length, slerp

SCALE = 255 / 2  # distance_input maps [-1, 1] to [0, 255]


def squared_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).flatten(1).sum(1)


class Linear(nn.Module):
    """G(z) = A z as a 1x4x4 image, float64: its path length has a closed form."""

    def __init__(self, dim: int = 6, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = torch.randn(16, dim, generator=g, dtype=torch.float64) * 0.1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z.double() @ self.A.T).reshape(len(z), 1, 4, 4)


def latents(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64), torch.randn(n, dim, generator=g, dtype=torch.float64)


def test_linear_generator_lerp_equals_its_closed_form():
    # lerp: l(t + eps) - l(t) = eps (z1 - z0), so d / eps^2 = SCALE^2 |A (z1 - z0)|^2 for every t, exactly
    G = Linear()
    z0, z1 = latents(500, 6, seed=1)
    t = torch.rand(500, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    e0, e1 = path_endpoints(z0, z1, t, 1e-4, lerp)
    lengths = path_lengths(G, squared_l2, e0, e1, epsilon=1e-4, batch_size=64)
    closed = SCALE ** 2 * ((z1 - z0) @ G.A.T).pow(2).sum(1)
    assert torch.allclose(lengths, closed, rtol=1e-6, atol=0)  # float64 round-off of the 1e-4 difference: ~1e-11
    # and the mean over pairs estimates E = 2 SCALE^2 ||A||_F^2 (z0, z1 independent standard normals)
    score = perceptual_path_length(lengths, lower=None, upper=None, seed=0)
    expected = 2 * SCALE ** 2 * float(G.A.pow(2).sum())
    se = float(lengths.std()) / math.sqrt(len(lengths))
    assert abs(score.value - expected) < 4 * se
    assert score.value == pytest.approx(float(closed.mean()), rel=1e-9)
    assert score.ci_low <= score.value <= score.ci_high and score.n == 500 and "bootstrap(100)" in score.method


def test_linear_generator_slerp_end_equals_the_derivative_of_slerp():
    # t = 0 in Z: the path length tends to SCALE^2 |A l'(0)|^2 with l'(0) = |z0| w c + (|z1| - |z0|) u0 (the
    # derivative of the norm-preserving slerp); the finite step leaves an O(eps) relative error: bound 1e-3
    G = Linear(dim=8, seed=3)
    z0, z1 = latents(200, 8, seed=4)
    e0, e1 = path_endpoints(z0, z1, torch.zeros(200, dtype=torch.float64), 1e-4, slerp)
    lengths = path_lengths(G, squared_l2, e0, e1, epsilon=1e-4)
    u0, u1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    d = (u0 * u1).sum(1, keepdim=True)
    c = (u1 - d * u0) / (u1 - d * u0).norm(dim=1, keepdim=True)
    velocity = z0.norm(dim=1, keepdim=True) * torch.acos(d) * c + (z1.norm(dim=1, keepdim=True) -
                                                                   z0.norm(dim=1, keepdim=True)) * u0
    closed = SCALE ** 2 * (velocity @ G.A.T).pow(2).sum(1)
    assert torch.allclose(lengths, closed, rtol=1e-3, atol=0)


def test_slerp_keeps_nvlabs_directions_and_the_norms():
    z0, z1 = latents(50, 5, seed=5)
    t = torch.full((50, 1), 0.3, dtype=torch.float64)
    out = slerp(z0, z1, t)
    # NVlabs' slerp of the directions (unit sphere), computed independently as a rotation in the (u0, u1) plane
    u0, u1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.acos((u0 * u1).sum(1, keepdim=True))
    nvlabs = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    assert torch.allclose(out / out.norm(dim=1, keepdim=True), nvlabs, atol=1e-12)
    assert torch.allclose(out.norm(dim=1), (0.7 * z0.norm(dim=1) + 0.3 * z1.norm(dim=1)), atol=1e-12)
    assert torch.allclose(slerp(z0, z1, torch.zeros(50, 1, dtype=torch.float64)), z0, atol=1e-12)


def test_percentile_filter_is_nvlabs_lower_and_higher():
    x = np.arange(1.0, 201.0)
    x[0], x[-1] = -1e9, 1e9  # the outliers the filter exists for
    kept = ppl.filtered(x, 1, 99)
    lo, hi = np.percentile(x, 1, method="lower"), np.percentile(x, 99, method="higher")
    assert kept.min() == lo and kept.max() == hi and len(kept) == ((x >= lo) & (x <= hi)).sum()
    assert perceptual_path_length(x, seed=0).value == pytest.approx(kept.mean(), rel=1e-12)


class SmallGenerator(nn.Module):
    """A fixed random conv generator z (N, 8) -> (N, 3, 8, 8) in [-1, 1], float32 (as the zoo's)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.fc = nn.Linear(8, 16 * 4 * 4)
        self.conv = nn.ConvTranspose2d(16, 3, 4, 2, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(torch.relu(self.fc(z).reshape(len(z), 16, 4, 4))))


def test_agrees_with_torch_fidelity_calculate_ppl_on_a_shared_generator():
    import torch_fidelity
    from torch_fidelity.generative_model_modulewrapper import GenerativeModelModuleWrapper
    from torch_fidelity.metric_ppl import calculate_ppl
    from torch_fidelity.noise import batch_lerp
    from torch_fidelity.registry import SAMPLE_SIMILARITY_REGISTRY
    from torch_fidelity.sample_similarity_base import SampleSimilarityBase

    class SquaredL2(SampleSimilarityBase):
        def __init__(self, name, **kwargs):
            super().__init__(name)

        def forward(self, a, b):
            return squared_l2(a, b)

    if "ganbench-test-squared-l2" not in SAMPLE_SIMILARITY_REGISTRY:
        torch_fidelity.register_sample_similarity("ganbench-test-squared-l2", SquaredL2)

    G = SmallGenerator().eval()

    class InPixels(nn.Module):  # torch-fidelity hands the generator's output to the similarity as it is
        def forward(self, z):
            return (G(z) + 1) * SCALE

    n, seed, eps = 300, 11, 1e-4
    out = calculate_ppl(1, input1=GenerativeModelModuleWrapper(InPixels(), 8, "normal", 0), input1_model_num_samples=n,
                        ppl_epsilon=eps, ppl_sample_similarity="ganbench-test-squared-l2", ppl_z_interp_mode="lerp",
                        ppl_reduction="none", ppl_discard_percentile_lower=None, ppl_discard_percentile_higher=None,
                        ppl_sample_similarity_resize=None, ppl_sample_similarity_dtype=None, batch_size=64, cuda=False,
                        rng_seed=seed, verbose=False)
    # the same latents: torch-fidelity's draws (RandomState(seed).randn, float32), t = 0 ("end"), lerp
    rng = np.random.RandomState(seed)
    z0 = torch.from_numpy(rng.randn(n, 8)).float()
    z1 = torch.from_numpy(rng.randn(n, 8)).float()
    e0, e1 = path_endpoints(z0, z1, torch.zeros(n), eps, lerp)
    assert torch.equal(e1, batch_lerp(z0, z1, eps)) and torch.equal(e0, z0)
    with torch.no_grad():
        ours = path_lengths(G, squared_l2, e0, e1, epsilon=eps, batch_size=64).numpy()
    theirs = np.asarray(out["perceptual_path_length_raw"], dtype=np.float64)
    rel = np.abs(ours - theirs) / np.abs(theirs)
    # the generator runs in float32 in both; the only difference is where each divides by eps^2 (float32 there,
    # float64 here): 1 ulp of float32
    assert rel.max() < 1e-6, rel.max()
    unfiltered = perceptual_path_length(ours, lower=None, upper=None).value
    assert unfiltered == pytest.approx(out["perceptual_path_length_mean"], rel=1e-6)
    # torch-fidelity 0.4.0's 1/99 filter calls np.percentile(interpolation=...), removed in numpy 2: the same filter
    # with numpy 2's name for that option, on torch-fidelity's distances
    lo, hi = np.percentile(theirs, 1, method="lower"), np.percentile(theirs, 99, method="higher")
    theirs_filtered = theirs[(theirs >= lo) & (theirs <= hi)].mean()
    assert perceptual_path_length(ours, seed=0).value == pytest.approx(theirs_filtered, rel=1e-6)


# ------------------------------------------------------------------------------------------------ task glue


def _feature_distance(monkeypatch):
    """A float-capable distance in place of an extractor (the glue's LPIPS/feature choice is tested separately)."""
    from ganbench.tasks import unconditional

    monkeypatch.setattr(unconditional, "path_distance",
                        lambda kind, extractor: (squared_l2, "distance test-pixels squared L2"))


@pytest.mark.parametrize("entry_name,space", [("dcgan", "z"), ("stylegan2", "z"), ("stylegan2", "w"), ("progan", "z")])
def test_zoo_generators_through_the_task_in_z_and_w(entry_name, space, monkeypatch):
    from ganbench.registry import MODELS
    from ganbench.tasks.unconditional import Unconditional

    import ganbench.zoo  # noqa: F401

    _feature_distance(monkeypatch)
    entry = MODELS.get(entry_name)
    cfg = entry.make_config("tiny") if "tiny" in entry.presets else entry.make_config()
    torch.manual_seed(0)
    model = entry.wrap(cfg, entry.build_generator(cfg))
    task = Unconditional(path_length=PathLengthConfig(pairs=4, space=space, batch_size=4))
    s = task.model_scores(model, None, None, seed=3)["ppl"]
    assert math.isfinite(s.value) and s.value > 0 and s.n == 4
    assert ("slerp in Z" if space == "z" else "lerp in W") in s.method and "test-pixels" in s.method


def test_ppl_is_opt_in_and_deterministic(monkeypatch):
    from ganbench.registry import MODELS
    from ganbench.tasks import get_task
    from ganbench.tasks.unconditional import Unconditional

    _feature_distance(monkeypatch)
    entry = MODELS.get("dcgan")
    model = entry.wrap(entry.make_config("tiny"), entry.build_generator(entry.make_config("tiny")))
    assert get_task("unconditional").model_scores(model, None, None, seed=3) == {}  # the registered task: no PPL
    asked = Unconditional().model_scores(model, None, None, seed=3, metrics=("fid", "ppl"))["ppl"]
    configured = Unconditional(path_length=PathLengthConfig()).model_scores(model, None, None, seed=3)["ppl"]
    assert asked.value == configured.value and asked.n == PathLengthConfig().pairs


def test_w_space_needs_a_mapping_network(monkeypatch):
    from ganbench.registry import MODELS
    from ganbench.tasks.unconditional import Unconditional

    _feature_distance(monkeypatch)
    entry = MODELS.get("dcgan")
    model = entry.wrap(entry.make_config("tiny"), entry.build_generator(entry.make_config("tiny")))
    with pytest.raises(ValueError, match="mapping"):
        Unconditional(path_length=PathLengthConfig(pairs=4, space="w")).model_scores(model, None, None, seed=0)


def test_feature_distance_without_lpips_needs_an_extractor_and_float_input(monkeypatch):
    from ganbench.metrics import lpips
    from ganbench.tasks import unconditional

    monkeypatch.setattr(lpips, "lpips_weights_available", lambda: False)
    with pytest.raises(ValueError, match="extractor"):
        unconditional.path_distance("auto", None)
    with pytest.raises(FileNotFoundError):
        monkeypatch.setenv("GANBENCH_OFFLINE", "1")
        monkeypatch.setenv("GANBENCH_LPIPS_WEIGHTS", "/nonexistent/lpips.pth")
        unconditional.path_distance("lpips", None)


def test_config_is_checked():
    with pytest.raises(ValueError):
        PathLengthConfig(space="x")
    with pytest.raises(ValueError):
        PathLengthConfig(distance="pixels")
    with pytest.raises(ValueError):
        PathLengthConfig(pairs=1)
