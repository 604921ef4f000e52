"""The one neighbour pass (ganbench.metrics.neighbours) against float64 brute force, torch-fidelity and prdc."""

import numpy as np
import pytest
import torch

from ganbench.metrics import MetricInputs, compute, fidelity
from ganbench.metrics import neighbours as nbmod
from ganbench.metrics.memorization import close_pairs
from ganbench.metrics.neighbours import NeighbourPass, screen_band


def brute(gen, ref, k_prc=3, k_dc=5):
    """Everything the pass reports, from full float64 distance matrices (torch.cdist on float64)."""
    g, r = gen.double(), ref.double()
    dgg, drr, dgr = torch.cdist(g, g), torch.cdist(r, r), torch.cdist(g, r)
    dgg.fill_diagonal_(float("inf"))
    drr.fill_diagonal_(float("inf"))
    return {"dgg": dgg, "drr": drr, "dgr": dgr, "r_prc": drr.kthvalue(k_prc, 1).values,
            "r_dc": drr.kthvalue(k_dc, 1).values, "g_prc": dgg.kthvalue(k_prc, 1).values}


def features(n, d, seed, shift=0.0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * (1 + 0.3 * torch.rand(d, generator=g)) + shift + offset


@pytest.mark.parametrize("n,m,d", [(300, 300, 10), (200, 700, 24)])
def test_pass_equals_float64_brute_force(n, m, d):
    gen, ref, held = features(n, d, 0, 0.25, 3.0), features(m, d, 1, 0.0, 3.0), features(150, d, 2, 0.0, 3.0)
    nb = NeighbourPass(gen, ref, held, seed=3)
    b = brute(gen, ref)
    torch.testing.assert_close(nb.ref_radius_prc, b["r_prc"], rtol=1e-12, atol=0)
    torch.testing.assert_close(nb.ref_radius_dc, b["r_dc"], rtol=1e-12, atol=0)
    torch.testing.assert_close(nb.gen_radius_prc, b["g_prc"], rtol=1e-12, atol=0)
    assert torch.equal(nb.precision_in, (b["dgr"] <= b["r_prc"]).any(1))
    assert torch.equal(nb.recall_in, (b["dgr"] <= b["g_prc"][:, None]).any(0))
    # density and coverage per reference subset (m > n: subsets of n, radii within each subset)
    subsets = nb.subset_index if nb.subset_index is not None else [torch.arange(m)]
    for s, idx in enumerate(subsets):
        sub = b["drr"][idx][:, idx]
        radius = sub.kthvalue(5, 1).values
        torch.testing.assert_close(nb.subset_radius_dc[s][idx], radius, rtol=1e-12, atol=0)
        inside = b["dgr"][:, idx] < radius
        assert torch.equal(nb.density_count[s], inside.sum(1).double())
        assert torch.equal(nb.coverage_in(s), inside.any(0))
        # coverage with each jackknife group left out
        groups, parts = nb.coverage_design
        for rep in range(groups * parts):
            keep = nb.coverage_group[rep // groups] != rep % groups
            assert torch.equal(nb.coverage_in(s, rep), inside[keep].any(0))
    # recall with each group left out: the remaining samples' radii recomputed among themselves
    groups, parts = nb.recall_design
    for rep in range(groups * parts):
        keep = nb.recall_group[rep // groups] != rep % groups
        radius = b["dgg"][keep][:, keep].kthvalue(3, 1).values
        assert torch.equal(nb.recall_in_left_out[rep], (b["dgr"][keep] <= radius[:, None]).any(0)), rep
    # neighbour lists: the exact columns are the nearest, in order
    nearest = b["dgr"].sort(1)
    torch.testing.assert_close(nb.gen_ref_knn.dist[:, :2], nearest.values[:, :2], rtol=1e-12, atol=0)
    assert torch.equal(nb.gen_ref_knn.index[:, 0], nearest.indices[:, 0])
    torch.testing.assert_close(nb.heldout_nearest_ref(), torch.cdist(held.double(), ref.double()).min(1).values,
                               rtol=1e-12, atol=0)
    # realism over the half of the reference balls with the smallest radii (float32 ratios)
    keep = b["r_prc"] <= b["r_prc"].median()
    realism = (b["r_prc"][keep] / b["dgr"][:, keep]).max(1).values
    torch.testing.assert_close(nb.realism, realism, rtol=2e-5, atol=0)
    # KID's kernel means against the whole reference
    torch.testing.assert_close(nb.kernel_mean, fidelity.reference_kernel_means(gen, ref), rtol=1e-5, atol=0)


def test_decisions_inside_the_float32_band_are_made_in_float64():
    """Generated points planted on the boundary of reference balls, 1e-7 of the radius inside or outside, far from
    the origin: the float32 expansion decides some of them wrongly, the pass decides every one as float64 does."""
    g = torch.Generator().manual_seed(0)
    d = 64  # above LOW_DIM: the screen is float32 (at most LOW_DIM dimensions it is float64)
    assert nbmod.screen_dtype(d) == torch.float32
    ref = (torch.randn(400, d, generator=g, dtype=torch.float64) + 40).float()
    b = brute(ref, ref)
    r = b["r_prc"]
    direction = torch.nn.functional.normalize(torch.randn(400, d, generator=g, dtype=torch.float64), dim=1)
    sign = torch.where(torch.rand(400, generator=g) < 0.5, -1.0, 1.0).double()
    gen = (ref.double() + direction * (r * (1 + sign * 1e-7)).unsqueeze(1)).float()
    truth = (torch.cdist(gen.double(), ref.double()) <= r).any(1)
    nb = NeighbourPass(gen, ref, kernel=False)
    assert torch.equal(nb.precision_in, truth)
    assert nb.stats["exact_pairs"] > 0
    # the plain float32 computation (torch-fidelity's) gets some of them wrong: the test can fail
    naive = (torch.cdist(gen, ref) <= r.float()).any(1)
    assert not torch.equal(naive, truth)


@pytest.mark.parametrize("d", [2, 10, 128, 512, 2048])
def test_float32_screen_error_is_far_inside_its_band(d):
    """The band the pass trusts its screen within (float32 above LOW_DIM dimensions, float64 at or below) is >= 15x
    the largest error seen, on features with a mean offset; the float64 screen is checked against extended
    precision (numpy longdouble differences)."""
    g = torch.Generator().manual_seed(d)
    scale = torch.rand(d, generator=g) * 3
    x = torch.randn(600, d, generator=g) * scale + torch.rand(d, generator=g) * 5
    y = torch.randn(800, d, generator=g) * scale + torch.rand(d, generator=g) * 5
    centre = y.double().mean(0)
    xc, yc = nbmod._centre(x, centre), nbmod._centre(y, centre)
    assert xc.x.dtype == nbmod.screen_dtype(d)
    d32 = nbmod._block(xc, slice(0, len(x)), yc).double()
    if nbmod.screen_dtype(d) == torch.float64:
        xl, yl = x.numpy().astype(np.longdouble), y.numpy().astype(np.longdouble)
        assert np.finfo(np.longdouble).eps < 1e-18, "this platform's longdouble is no wider than float64"
        exact = torch.from_numpy(((xl[:, None, :] - yl[None, :, :]) ** 2).sum(-1).astype(np.float64))
    else:
        exact = torch.cdist(x.double(), y.double()).pow(2)
    relative = (d32 - exact).abs() / (xc.sq.unsqueeze(1) + yc.sq.unsqueeze(0))
    assert float(relative.max()) * 15 <= screen_band(d)


def test_precision_recall_equal_torch_fidelity_and_density_coverage_equal_prdc():
    prdc = pytest.importorskip("prdc")
    from torch_fidelity.metric_prc import prc_features_to_metric

    from ganbench.metrics.prdc import density_coverage

    gen, ref = features(400, 16, 5, 0.2), features(400, 16, 6)
    nb = NeighbourPass(gen, ref)
    theirs = prc_features_to_metric(gen, ref, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False,
                                    verbose=False)
    ours = fidelity.precision_recall(gen, ref, neighbours=nb)
    # torch-fidelity returns float32 means; a single different decision would move them by 1/400
    assert ours["precision"].value == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"].value == pytest.approx(theirs["recall"], abs=1e-6)
    dc = density_coverage(gen, ref, neighbours=nb)
    ref_dc = prdc.compute_prdc(ref.double().numpy(), gen.double().numpy(), 5)
    assert dc["density"].value == pytest.approx(ref_dc["density"], rel=1e-12)
    assert dc["coverage"].value == pytest.approx(ref_dc["coverage"], rel=1e-12)


def test_birthday_pairs_from_the_lists_equal_the_direct_count():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(60, 8, generator=g)
    gen = torch.cat([base[torch.randint(60, (500,), generator=g)] + 0.01 * torch.randn(500, 8, generator=g),
                     torch.randn(300, 8, generator=g)])  # near-duplicates and distinct points
    nb = NeighbourPass(gen, torch.randn(100, 8, generator=g), kernel=False)
    rng = np.random.default_rng(0)
    for threshold in (0.005, 0.03, 0.2, 1.0):  # 1.0 reaches past the lists' end: the direct fallback
        members = torch.from_numpy(rng.choice(len(gen), 200, replace=False))
        d = torch.cdist(gen[members].double(), gen[members].double())
        direct = int((d[torch.triu_indices(200, 200, 1).unbind()] < threshold).sum())
        assert close_pairs(nb.gen_knn, nb.gen, members, threshold) == direct, threshold


def test_an_evaluation_computes_one_pass(monkeypatch):
    built = []
    original = nbmod.NeighbourPass.__post_init__

    def counting(self):
        built.append(1)
        original(self)

    monkeypatch.setattr(nbmod.NeighbourPass, "__post_init__", counting)
    gen, ref, held = features(200, 12, 0, 0.1), features(300, 12, 1), features(150, 12, 2)
    inputs = MetricInputs({"f": gen}, {"f": ref}, "f", None, None, 0, heldout={"f": held})
    scores = compute(["kid", "prc", "dc", "realism", "memorization", "near_copies", "authenticity", "data_copying",
                      "birthday"], inputs)
    assert len(built) == 1
    assert {"kid", "precision", "recall", "density", "coverage", "realism", "copy_fraction", "near_copy_fraction",
            "authpct", "c_t", "birthday_support"} <= set(scores)
