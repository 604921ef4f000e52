"""Number of statistically different bins (NDB) and the bins' Jensen-Shannon divergence (Richardson & Weiss
2018, "On GANs and GMMs"), matching the reference ``eitanrich/gans-n-gmms`` ``ndb.py`` in feature space.

K-means (K bins) is fitted on the training set; generated and training samples are assigned to the
nearest centre; each bin's two proportions are compared with a two-proportion z-test (pooled standard
error, alpha = 0.05). NDB/K is about alpha for a generator that matches the data; JSD is between the
two bin histograms (natural log, 0 to ln 2).

Above ``KMEANS_FIT_MAX`` training samples the centres are fitted on a seeded random subset of that many (every
training sample is then assigned to its nearest centre): the bins are a partition of feature space fixed before
the generated samples are seen, which is all the test needs, and k-means on 50 000 x 2048 features took half a
minute of a 10-minute budget (``benchmarks/metric_scaling.py``). The data-copying test's cells are fitted the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm
from sklearn.cluster import KMeans

from ganbench.results.schema import Score


KMEANS_FIT_MAX = 10_000  # k-means centres are fitted on at most this many rows


def fit_cells(x: np.ndarray, clusters: int, n_init: int, seed: int) -> tuple[KMeans, np.ndarray]:
    """K-means with ``clusters`` centres, fitted on ``x`` (float64 rows) or, above ``KMEANS_FIT_MAX`` rows, on a seeded
    random subset of that many; returns the model and the nearest centre of every row of ``x``."""
    fit = x
    if len(x) > KMEANS_FIT_MAX:
        fit = x[np.sort(np.random.default_rng(seed).choice(len(x), KMEANS_FIT_MAX, replace=False))]
    km = KMeans(n_clusters=clusters, n_init=n_init, random_state=seed).fit(fit)
    return km, (km.labels_ if fit is x else km.predict(x))


def ndb_jsd(gen: torch.Tensor, train: torch.Tensor, bins: int = 50, alpha: float = 0.05, seed: int = 0) -> dict[str, Score]:
    bins = min(bins, len(train) // 10)
    if bins < 2:
        raise ValueError(f"NDB needs at least 20 training samples, got {len(train)}")
    x_train, x_gen = train.double().numpy(), gen.double().numpy()
    km, labels = fit_cells(x_train, bins, 3, seed)
    p = np.bincount(labels, minlength=bins) / len(x_train)
    q = np.bincount(km.predict(x_gen), minlength=bins) / len(x_gen)
    pooled = (p * len(x_train) + q * len(x_gen)) / (len(x_train) + len(x_gen))
    se = np.sqrt(pooled * (1 - pooled) * (1 / len(x_train) + 1 / len(x_gen)))
    z = np.divide(p - q, se, out=np.zeros_like(se), where=se > 0)
    different = int((np.abs(z) > norm.ppf(1 - alpha / 2)).sum())
    m = (p + q) / 2
    kl = lambda a, b: float(np.sum(a[a > 0] * np.log(a[a > 0] / b[a > 0])))  # noqa: E731
    jsd = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    frac = different / bins
    std = float(np.sqrt(frac * (1 - frac) / bins))
    return {"ndb": Score(frac, std, None, None, len(gen), False, f"NDB/K, K={bins} k-means bins, alpha={alpha}"),
            "ndb_jsd": Score(jsd, None, None, None, len(gen), False, f"JSD of {bins}-bin histograms (nats)")}
