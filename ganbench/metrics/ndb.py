"""Number of statistically different bins (NDB) and the bins' Jensen-Shannon divergence (Richardson & Weiss
2018, "On GANs and GMMs"), matching the reference ``eitanrich/gans-n-gmms`` ``ndb.py`` in feature space.

K-means (K bins) is fitted on the training set; generated and training samples are assigned to the
nearest centre; each bin's two proportions are compared with a two-proportion z-test (pooled standard
error, alpha = 0.05). NDB/K is about alpha for a generator that matches the data; JSD is between the
two bin histograms (natural log, 0 to ln 2).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm
from sklearn.cluster import KMeans

from ganbench.results.schema import Score


def ndb_jsd(gen: torch.Tensor, train: torch.Tensor, bins: int = 50, alpha: float = 0.05, seed: int = 0) -> dict[str, Score]:
    bins = min(bins, len(train) // 10)
    if bins < 2:
        raise ValueError(f"NDB needs at least 20 training samples, got {len(train)}")
    x_train, x_gen = train.double().numpy(), gen.double().numpy()
    km = KMeans(n_clusters=bins, n_init=3, random_state=seed).fit(x_train)
    p = np.bincount(km.labels_, minlength=bins) / len(x_train)
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
