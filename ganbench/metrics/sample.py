"""The sample metrics: every score that compares a sample set with the reference (and held-out) real data, from one
feature pass. Registered here in the order a leaderboard shows them: fidelity (FID, FID-inf, KID, IS, precision and
recall, density and coverage), then diversity, mode collapse and memorisation.

Each metric's module names the paper it implements and the reference implementation it matches. The neighbour-based
metrics (precision/recall, density/coverage, realism, memorisation, the copy scores, birthday) read one neighbour pass
(``ganbench.metrics.neighbours``), computed on first use and cached on the inputs; FID and FID-infinity share the
generated samples' jackknife groups the same way.
"""

from __future__ import annotations

from ganbench.metrics import copies, diversity, fidelity, lpips, memorization, modes, ndb, prdc
from ganbench.metrics.base import MetricInputs, ScoreInfo, register_metric
from ganbench.metrics.frechet import JACKKNIFE_GROUPS, GroupedFeatures, fid_infinity, fid_with_jackknife
from ganbench.metrics.neighbours import neighbours


def _toy_modes(dataset: str):
    from ganbench.data import TOY_SETS

    return TOY_SETS[dataset]


def _grouped(x: MetricInputs) -> GroupedFeatures:
    """The generated features' jackknife groups (FID's interval, FID-infinity), built once per evaluation."""
    if "fid_groups" not in x._cache:
        x._cache["fid_groups"] = GroupedFeatures(x.feature(), x.reference_stats(), JACKKNIFE_GROUPS, x.seed)
    return x._cache["fid_groups"]


@register_metric("fid", {"fid": ScoreInfo(False, 2, min_significant=2)}, {"gen_features", "ref_stats"},
                 "Fréchet distance of Gaussian fits; jackknife interval over generated samples",
                 paper="Heusel et al. 2017, arXiv:1706.08500",
                 checked_against="pytorch-fid, clean-fid, torch-fidelity, torchmetrics (same features, 1e-12); interval "
                                 "coverage on Gaussians and digit features (benchmarks/interval_coverage.py)")
def _fid(x: MetricInputs):
    score, grouped = fid_with_jackknife(x.feature(), x.reference_stats(), seed=x.seed, gen_stats=x.gen_stats)
    if grouped is not None:  # FID-infinity reuses them (below 2 x its groups' samples it refuses before reading)
        x._cache["fid_groups"] = grouped
    return {"fid": score}


@register_metric("fid_inf", {"fid_inf": ScoreInfo(False, 2, min_significant=2)}, {"gen_features", "ref_stats"},
                 "FID extrapolated to infinite samples (jackknife extrapolation in 1/N)",
                 paper="Chong & Forsyth 2020, arXiv:1911.07023; Quenouille 1956",
                 checked_against="Gaussians of known FID: bias removed, interval coverage (benchmarks/interval_coverage.py)")
def _fid_inf(x: MetricInputs):
    return {"fid_inf": fid_infinity(x.feature(), x.reference_stats(), seed=x.seed, grouped=_grouped(x))}


@register_metric("kid", {"kid": ScoreInfo(False, 4)}, {"features"},
                 "kernel (cubic polynomial) MMD, unbiased, over subsets; standard error over generated samples",
                 paper="Bińkowski et al. 2018, arXiv:1801.01401",
                 checked_against="torch-fidelity kid (same subsets); variance against the closed form on Gaussians")
def _kid(x: MetricInputs):
    nb = neighbours(x)
    return {"kid": fidelity.kid(x.feature(), x.feature("ref"), seed=x.seed, kernel_means=nb.kernel_mean)}


@register_metric("is", {"is": ScoreInfo(True, 2)}, {"logits"},
                 "Inception Score from the extractor's class logits", paper="Salimans et al. 2016, arXiv:1606.03498",
                 checked_against="torch-fidelity isc, and its bounds")
def _is(x: MetricInputs):
    return {"is": fidelity.inception_score(x.logits)}


@register_metric("prc", {"precision": ScoreInfo(True, 3), "recall": ScoreInfo(True, 3)}, {"features"},
                 "improved precision and recall (k=3 nearest-neighbour manifolds)",
                 paper="Kynkäänniemi et al. 2019, arXiv:1904.06991", checked_against="torch-fidelity prc, prdc")
def _prc(x: MetricInputs):
    return fidelity.precision_recall(x.feature(), x.feature("ref"), neighbours=neighbours(x))


@register_metric("dc", {"density": ScoreInfo(True, 3), "coverage": ScoreInfo(True, 3)}, {"features"},
                 "density and coverage (k=5)", paper="Naeem et al. 2020, arXiv:2002.09797", checked_against="prdc")
def _dc(x: MetricInputs):
    return prdc.density_coverage(x.feature(), x.feature("ref"), neighbours=neighbours(x))


@register_metric("realism", {"realism": ScoreInfo(True, 3), "realism_p10": ScoreInfo(True, 3, "hidden")}, {"features"},
                 "realism score per generated sample: median and 10th percentile",
                 paper="Kynkäänniemi et al. 2019, arXiv:1904.06991 (section 5)",
                 checked_against="brute-force float64 realism on the same features")
def _realism(x: MetricInputs):
    nb = neighbours(x)
    x._cache["realism_per_sample"] = nb.realism
    return fidelity.realism(nb)


@register_metric("modes", {"modes": ScoreInfo(True, 1, "diversity"), "hq_fraction": ScoreInfo(True, 3, "diversity"),
                           "reverse_kl": ScoreInfo(False, 3, "diversity")}, {"toy_modes"},
                 "modes captured, high-quality fraction and reverse KL on 2D mixtures",
                 paper="Srivastava et al. 2017 (VEEGAN); Lin et al. 2018 (PacGAN)",
                 checked_against="closed-form counts on planted point sets")
def _modes(x: MetricInputs):
    modes_fn, std = _toy_modes(x.dataset)
    return modes.mode_scores(x.feature(), modes_fn(), std, seed=x.seed)


@register_metric("stacked_modes", {"stacked_modes": ScoreInfo(True, 0, "diversity"),
                                   "stacked_kl": ScoreInfo(False, 3, "diversity")}, {"stacked_digits"},
                 "Stacked MNIST modes covered of 1000 and KL to uniform", paper="Metz et al. 2017; Srivastava et al. 2017",
                 checked_against="closed-form counts on planted digit triples")
def _stacked(x: MetricInputs):
    return modes.stacked_mode_scores(x.gen["digits"], seed=x.seed)


@register_metric("ndb", {"ndb": ScoreInfo(False, 2, "diversity"), "ndb_jsd": ScoreInfo(False, 2, "diversity")},
                 {"features"}, "statistically different k-means bins and their JSD",
                 paper="Richardson & Weiss 2018, arXiv:1805.12462", checked_against="planted real and shifted sets")
def _ndb(x: MetricInputs):
    return ndb.ndb_jsd(x.feature(), x.feature("ref"), seed=x.seed)


@register_metric("ms_ssim", {"ms_ssim": ScoreInfo(False, 3, "diversity")}, {"images"},
                 "mean MS-SSIM between random sample pairs (lower is more diverse)",
                 paper="Odena et al. 2017 (AC-GAN) diversity; Wang et al. 2003 MS-SSIM",
                 checked_against="planted copies (MS-SSIM 1) and distinct digits")
def _ms_ssim(x: MetricInputs):
    return diversity.ms_ssim_diversity(x.images, seed=x.seed)


@register_metric("lpips", {"lpips_diversity": ScoreInfo(True, 3, "diversity")}, {"images", "lpips_weights"},
                 "mean LPIPS (VGG16) between random sample pairs, when LPIPS weights are present",
                 paper="Zhang et al. 2018, arXiv:1801.03924", checked_against="torch-fidelity lpips-vgg16 on the same weights")
def _lpips(x: MetricInputs):
    return lpips.lpips_diversity(x.images, seed=x.seed)


@register_metric("memorization", {"copy_fraction": ScoreInfo(False, 3, "diversity"),
                                  "nn_ratio": ScoreInfo(True, 2, "diversity")}, {"features", "heldout"},
                 "nearest-training-neighbour distances against the held-out split's",
                 paper="nearest-neighbour memorisation test (Meehan et al. 2020's setting)",
                 checked_against="planted exact copies")
def _memorization(x: MetricInputs):
    return memorization.memorization(x.feature(), x.feature("ref"), x.feature("heldout"), neighbours=neighbours(x))


@register_metric("near_copies", {"near_copy_fraction": ScoreInfo(False, 3, "diversity"),
                                 "near_copy_feature": ScoreInfo(False, 3, "hidden"),
                                 "near_copy_pixel": ScoreInfo(False, 3, "hidden")}, {"features"},
                 "per-sample near-copy detector: relative nearest-training distance in features and registered pixels",
                 paper="Carlini et al. 2023, arXiv:2301.13188 (relative L2 distance)",
                 checked_against="planted near-copies of training digits (noise, shifts, brightness, JPEG, blur)")
def _near_copies(x: MetricInputs):
    scores, per_sample = copies.near_copies(neighbours(x), x.images, x.ref_images, x.heldout_images)
    x._cache["near_copies_per_sample"] = per_sample
    return scores


@register_metric("authenticity", {"authpct": ScoreInfo(True, 1, "diversity")}, {"features"},
                 "AuthPct: percent of generated samples not closer to a training sample than its own nearest neighbour",
                 paper="Alaa et al. 2022, arXiv:2102.08921", checked_against="dgm-eval's authpct re-implemented in the test")
def _authenticity(x: MetricInputs):
    return {"authpct": copies.authenticity(neighbours(x))}


@register_metric("data_copying", {"c_t": ScoreInfo(True, 2, "diversity")}, {"features", "heldout"},
                 "data-copying test C_T (z; below -3: copying)", paper="Meehan et al. 2020, arXiv:2004.05675",
                 checked_against="the authors' Zu/C_T code re-implemented in the test; planted copies")
def _data_copying(x: MetricInputs):
    return {"c_t": copies.data_copying(neighbours(x), seed=x.seed)}


@register_metric("birthday", {"birthday_support": ScoreInfo(True, None, "diversity", significant=3),
                              "duplicate_pairs": ScoreInfo(False, None, "hidden")}, {"features", "heldout"},
                 "birthday-paradox support size", paper="Arora & Zhang 2017, arXiv:1706.08224",
                 checked_against="planted supports of known size")
def _birthday(x: MetricInputs):
    return memorization.birthday(x.feature(), x.feature("heldout"), seed=x.seed, neighbours=neighbours(x))
