"""Intra-class FID (iFID) of class-conditional samples, as PyTorch-StudioGAN defines it (Kang et al. 2023,
"StudioGAN: A Taxonomy and Benchmark of GANs for Image Synthesis", TPAMI, arXiv:2206.09479; its
``WORKER.calculate_intra_class_fid``): for every class c, the Fréchet distance between the features of samples
generated for class c and the features of the reference (training) images of class c, then the mean over classes.

A generator that draws good images of the wrong class (labels permuted) keeps a small unconditional FID, because the
mixture over classes is unchanged, but every class is compared with another class's images: its intra-class FID is
large. That is what it adds to FID, beside CAS.

What differs from StudioGAN: the generated samples of each class are the protocol's samples drawn for that class
(n / classes each; StudioGAN draws as many as the class has training images), on whichever extractor the protocol
names (StudioGAN: Inception). Distances use ``ganbench.metrics.frechet`` in float64. The spread is a bootstrap over
the generated samples, resampled within each class (``INTRA_FID_BOOTSTRAP`` replicates: every replicate costs one
Fréchet distance per class).
"""

from __future__ import annotations

import numpy as np
import torch

from ganbench.metrics.fidelity import bootstrap_interval
from ganbench.metrics.frechet import GaussianStats, frechet_distance
from ganbench.results.schema import Score

INTRA_FID_BOOTSTRAP = 20  # bootstrap replicates (each is one Fréchet distance per class)


def intra_class_fid(gen: torch.Tensor, gen_labels: torch.Tensor, ref: torch.Tensor, ref_labels: torch.Tensor,
                    seed: int = 0, bootstrap: int = INTRA_FID_BOOTSTRAP) -> Score:
    """Mean over the drawn classes of the FID between generated and reference features of that class.

    A drawn class with fewer than 2 generated or 2 reference samples has no Gaussian fit: it is left out, and the
    score's method names it.

    Raises:
        ValueError: Labels that do not match the features, or no class with 2 samples on both sides.
    """
    gen_labels, ref_labels = torch.as_tensor(gen_labels).long(), torch.as_tensor(ref_labels).long()
    if gen_labels.shape != (len(gen),) or ref_labels.shape != (len(ref),):
        raise ValueError(f"labels must be one per sample: {tuple(gen_labels.shape)} for {len(gen)} generated, "
                         f"{tuple(ref_labels.shape)} for {len(ref)} reference")
    x, y = gen.double(), ref.double()
    per_class, refs, left_out = [], [], []
    for c in torch.unique(gen_labels).tolist():
        g_idx = torch.nonzero(gen_labels == c).flatten()
        r = y[ref_labels == c]
        if len(g_idx) < 2 or len(r) < 2:  # no Gaussian fit: a class a small real row happens to hold once
            left_out.append(c)
            continue
        per_class.append(g_idx)
        refs.append(GaussianStats.from_features(r, with_root=True))
    if not per_class:
        raise ValueError("intra-class FID needs at least 2 generated and 2 reference samples of some class; no class "
                         "has them")
    value = float(np.mean([frechet_distance(GaussianStats.from_features(x[i]), s) for i, s in zip(per_class, refs)]))
    rng = np.random.default_rng(seed)
    reps = np.empty(bootstrap)
    for b in range(bootstrap):
        reps[b] = np.mean([frechet_distance(GaussianStats.from_features(x[i[rng.integers(0, len(i), len(i))]]), s)
                           for i, s in zip(per_class, refs)])
    std, lo, hi = bootstrap_interval(reps)
    skipped = f" ({len(left_out)} with fewer than 2 samples left out: {left_out})" if left_out else ""
    return Score(value, std, lo, hi, len(gen), False, f"bootstrap({bootstrap}) over generated samples within each "
                 f"class; mean over {len(per_class)} classes{skipped}")


__all__ = ["INTRA_FID_BOOTSTRAP", "intra_class_fid"]
