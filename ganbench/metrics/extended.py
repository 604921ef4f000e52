"""The sample metrics of the anchors ganbench is compared with, beyond its first set (issue 19): sFID, Vendi, RBF-kernel
MMD (CMMD's estimator) and KID's RBF variant, FWD, sliced Wasserstein, intra-class FID; and PPL, which its task
computes from the model. Registered here, after ``sample``'s metrics, in the order a leaderboard shows them.

On by default wherever their requirements are met (each is cheap beside the feature pass): ``vendi`` and
``vendi_pixels``, ``rbf_mmd``, ``kid_rbf``, ``swd`` on any extractor; ``fwd`` where the task gives the reference
images (unconditional and class-conditional image tasks); ``sfid`` when the extractor has Inception's spatial layer
(``inception_v3_fid``); ``intra_fid`` for class-conditional samples. Opt-in: ``ppl`` (it needs the generator itself;
see ``ganbench.tasks.unconditional``). Each module names its paper and the reference implementation it matches.
"""

from __future__ import annotations

from ganbench.features.inception import SPATIAL_LAYER
from ganbench.metrics import fidelity, fwd, intra_fid, mmd, swd, vendi
from ganbench.metrics.base import MetricInputs, ScoreInfo, register_metric
from ganbench.metrics.frechet import GaussianStats
from ganbench.metrics.neighbours import NeighbourPass, neighbours, too_few_for_pass

SFID_BOOTSTRAP = 20  # sFID's bootstrap replicates: each is a 2023-d Fréchet distance (about 1 s on 2 CPU cores)


@register_metric("sfid", {"sfid": ScoreInfo(False, 2, min_significant=2)}, {"spatial_features"},
                 "spatial FID: Fréchet distance on Inception's mixed_6/conv[:7] (2023-d); bootstrap interval",
                 paper="Nash et al. 2021, arXiv:2103.03841",
                 checked_against="frechet_distance on mixed_6/conv features hooked out of torch-fidelity's own "
                                 "Inception (fabricated weights)")
def _sfid(x: MetricInputs):
    ref = GaussianStats.from_features(x.ref[SPATIAL_LAYER], with_root=True)
    return {"sfid": fidelity.fid(x.gen[SPATIAL_LAYER], ref, seed=x.seed, bootstrap=SFID_BOOTSTRAP)}


@register_metric("vendi", {"vendi": ScoreInfo(True, 2, "diversity")}, {"features"},
                 "Vendi score (cosine kernel, q=1) of the samples' features: their effective number",
                 paper="Friedman & Dieng 2023, arXiv:2210.02410",
                 checked_against="vendi-score (vendi.score_X / score_dual), 1e-9; k orthogonal clusters give k")
def _vendi(x: MetricInputs):
    return {"vendi": vendi.vendi_score(x.feature(), seed=x.seed)}


@register_metric("vendi_pixels", {"vendi_pixels": ScoreInfo(True, 2, "diversity")}, {"images"},
                 "Vendi score of the images' pixels (at most 32x32)", paper="Friedman & Dieng 2023, arXiv:2210.02410",
                 checked_against="vendi-score on the same pixel vectors, 1e-9")
def _vendi_pixels(x: MetricInputs):
    return {"vendi_pixels": vendi.pixel_vendi_score(x.images, seed=x.seed)}


@register_metric("rbf_mmd", {"rbf_mmd": ScoreInfo(False, 4)}, {"features"},
                 "Gaussian-RBF MMD, CMMD's estimator (sigma 10, x1000, unit-norm features); CMMD on CLIP features",
                 paper="Jayasumana et al. 2024, arXiv:2401.09603",
                 checked_against="google-research/cmmd distance.mmd re-implemented in numpy in the test; hand-computed "
                                 "value on 2+2 points")
def _rbf_mmd(x: MetricInputs):
    gen, ref = x.feature(), x.feature("ref")
    if too_few_for_pass(len(gen), len(ref), NeighbourPass.k_prc, NeighbourPass.k_dc) is not None:
        return {"rbf_mmd": mmd.rbf_mmd(gen, ref, seed=x.seed)}  # too few samples for the neighbour pass
    return {"rbf_mmd": mmd.rbf_mmd_from_pass(neighbours(x))}


@register_metric("kid_rbf", {"kid_rbf": ScoreInfo(False, 4)}, {"features"},
                 "KID with torch-fidelity's RBF kernel (sigma 10), unbiased, over subsets",
                 paper="Bińkowski et al. 2018, arXiv:1801.01401 (torch-fidelity 0.4 kid_kernel='rbf')",
                 checked_against="torch-fidelity kid_features_to_metric(kid_kernel='rbf'), same subsets")
def _kid_rbf(x: MetricInputs):
    return {"kid_rbf": mmd.kid_rbf(x.feature(), x.feature("ref"), seed=x.seed)}


@register_metric("swd", {"swd": ScoreInfo(False, None), "swd_approx": ScoreInfo(False, None, "hidden")}, {"features"},
                 f"sliced Wasserstein-2 over {swd.PROJECTIONS} random projections, and dgm-eval's projection-free "
                 "approximation", paper="Rabin et al. 2011; Nadjahi et al. 2021, arXiv:2106.15427 (dgm-eval sw_approx)",
                 checked_against="POT ot.sliced_wasserstein_distance on the same projections; dgm-eval's sw_approx "
                                 "formula re-implemented in the test")
def _swd(x: MetricInputs):
    return swd.sliced_wasserstein_scores(x.feature(), x.feature("ref"), seed=x.seed)


@register_metric("fwd", {"fwd": ScoreInfo(False, None)}, {"images", "ref_images"},
                 "Fréchet Wavelet Distance: mean Fréchet distance over Haar wavelet packets (level <= 4); no network",
                 paper="Veeramacheneni et al. 2025, arXiv:2312.15289",
                 checked_against="PyWavelets WaveletPacket2D + scipy sqrtm re-implementation (pytorchfwd's "
                                 "definition) in the test; rises with blur and noise")
def _fwd(x: MetricInputs):
    return {"fwd": fwd.frechet_wavelet_distance(x.images, x.ref_images, seed=x.seed)}


@register_metric("intra_fid", {"intra_fid": ScoreInfo(False, 2, min_significant=2)}, {"class_labels"},
                 "intra-class FID: mean over classes of the FID between samples and reference images of that class",
                 paper="StudioGAN's iFID (Kang et al. 2023, arXiv:2206.09479)",
                 checked_against="per-class frechet_distance re-computed in the test; class-swapped generator planted")
def _intra_fid(x: MetricInputs):
    return {"intra_fid": intra_fid.intra_class_fid(x.feature(), x.labels, x.feature("ref"), x.ref_labels, seed=x.seed)}


@register_metric("ppl", {"ppl": ScoreInfo(False, None)}, {"model"},
                 "perceptual path length (opt-in: the task draws it from the generator's latents; "
                 "Unconditional(path_length=PathLengthConfig()))",
                 paper="Karras et al. 2019, arXiv:1812.04948 (NVlabs perceptual_path_length.py)",
                 checked_against="torch-fidelity calculate_ppl on a shared generator; closed form of a linear "
                                 "generator")
def _ppl(x: MetricInputs):
    raise ValueError("ppl is computed by the task from the generator (ganbench.tasks.unconditional), not from samples")

