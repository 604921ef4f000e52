"""The one nearest-neighbour pass of an evaluation (ganbench issue 16, item 2).

Precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020), the realism score
(Kynkäänniemi et al. 2019), memorisation (nearest-training distances, the data-copying test of Meehan et
al. 2020, authenticity of Alaa et al. 2022, the relative nearest-neighbour distance of Carlini et al. 2023)
and the birthday test all read distances between generated (G, N x D), reference (R, M x D) and held-out
(H) features. Each used to compute its own. ``NeighbourPass`` computes them once, in row chunks so that
memory stays O(chunk x M), and keeps what the metrics read:

- the K nearest rows of R for each row of R, of G for each row of G, of R for each row of G and for each
  row of H (indices and distances, nearest first);
- one scan of the G x R distances that reduces, per chunk, to: whether each generated sample lies in a
  reference k-NN ball (precision, <=, as torch-fidelity), how many reference balls contain it (density,
  <, as prdc, per reference subset), which jackknife groups of generated samples reach into each
  reference ball (coverage, and coverage with each group left out), which groups' full-radius balls
  contain each reference sample and which pairs lie between a generated sample's radius and its largest
  radius once a group is left out (recall, and recall with each group left out, radii recomputed), each
  generated sample's realism score, and the mean cubic-kernel value of each generated sample against the
  reference (KID's variance). The jackknife groups are bits of one integer mask per reference sample:
  recall's 8 random partitions into 3 groups and coverage's 2 into 10 (see ``fidelity`` and ``prdc``).

Exactness. The scan computes squared distances in float32 as |x|^2 + |y|^2 - 2 x.y on features centred
at the reference mean (sgemm: ~90 GFLOP/s here against ~45 for float64). That value is within
(64 + 2 sqrt(D)) * eps32 * (|x|^2 + |y|^2) of the exact one: at least 15 times the largest error measured
(3.4 eps32, on offset Gaussian features at D = 1 to 2048; ``tests/test_neighbours.py``). Every decision (is a
point inside a ball, which neighbour is k-th) whose float32 margin is inside that band is re-decided on
distances recomputed in float64 from the features, so every count equals the float64 computation's;
distances that are reported (radii, nearest-neighbour distances) are recomputed in float64. Continuous
summaries (realism, the far columns of a neighbour list, kernel means) stay float32.

Low dimension. With at most ``LOW_DIM`` dimensions (the 2-d toy sets) the screen runs in float64: there the
nearest neighbours of clustered points are often far closer than the float32 band (eps32 times the squared
norms), so nearly every row would be re-decided one by one, while float64 blocks cost little at small D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

LOW_DIM = 32  # up to this many dimensions the screen computes in float64
CHUNK_ELEMENTS = 1 << 25  # float32 entries of one distance block (128 MB); rows per chunk = this / pool size
LIST_EXTRA = 8  # neighbours kept beyond the largest k a metric reads, so that leaving a group out needs no rescan
EXACT_EXTRA = 4  # float32 candidates refined in float64 beyond the ones reported exactly


def screen_dtype(dim: int) -> torch.dtype:
    """The screen's precision: float64 up to ``LOW_DIM`` dimensions, else float32."""
    return torch.float64 if dim <= LOW_DIM else torch.float32


def screen_band(dim: int) -> float:
    """Relative bound on the screen's squared-distance error, times |x|^2 + |y|^2 of the centred pair."""
    return (64 + 2 * math.sqrt(dim)) * float(torch.finfo(screen_dtype(dim)).eps)


def exact_sq_distances(x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                       block: int = 4096) -> torch.Tensor:
    """float64 |x[rows] - y[cols]|^2 for index pairs, from the features as given (no expansion, no centring)."""
    out = torch.empty(len(rows), dtype=torch.float64)
    step = max(1, block * 256 // max(x.shape[1], 1))
    for i in range(0, len(rows), step):
        a = x[rows[i:i + step]].double()
        b = y[cols[i:i + step]].double()
        out[i:i + step] = (a - b).pow_(2).sum(1)
    return out


def exact_row_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float64 distances between every row of ``x`` and every row of ``y`` (for the rare fallbacks)."""
    xd, yd = x.double(), y.double()
    d2 = (xd * xd).sum(1, keepdim=True) + (yd * yd).sum(1) - 2 * xd @ yd.T
    # the expansion can lose digits for near points; recompute those from differences
    close = d2 < 1e-6 * ((xd * xd).sum(1, keepdim=True) + (yd * yd).sum(1))
    if close.any():
        r, c = close.nonzero(as_tuple=True)
        d2[r, c] = (xd[r] - yd[c]).pow(2).sum(1)
    return d2.clamp_min_(0).sqrt_()


@dataclass
class KnnLists:
    """The ``k`` nearest rows of a pool for each query row, nearest first.

    Columns ``[0, exact)`` hold float64 distances recomputed from the features and are exactly the nearest
    (ties aside); the other columns hold the float32 screen's distances, within ``band`` of the exact squared
    distance. Every pool row missing from a query's list is at squared distance >= ``beyond2`` (per query).
    """

    index: torch.Tensor  # (n, k) int64 pool rows
    dist: torch.Tensor  # (n, k) float64
    exact: int  # leading columns that are exact float64
    beyond2: torch.Tensor  # (n,) float64 lower bound on the squared distance of every pool row not listed
    band: torch.Tensor  # (n, k) float64 bound on |listed squared distance - exact| (0 in the exact columns)

    @property
    def k(self) -> int:
        return self.index.shape[1]

    def kth(self, k: int) -> torch.Tensor:
        """Exact distance to the k-th nearest (k <= exact)."""
        if k > self.exact:
            raise ValueError(f"only the first {self.exact} neighbours are exact, asked for the {k}-th")
        return self.dist[:, k - 1]


@dataclass
class _Centred:
    """Features centred at the reference mean, in float32, with their squared norms (float64)."""

    x: torch.Tensor
    sq: torch.Tensor  # float64 |x|^2 of the float32 centred rows


ROW_CHUNK = 4096  # rows taken to float64 at a time outside the scans (a 50 000 x 2048 float64 copy is 800 MB)


def _centre(features: torch.Tensor, centre: torch.Tensor) -> _Centred:
    x = torch.empty(features.shape, dtype=screen_dtype(features.shape[1]))
    sq = torch.empty(len(features), dtype=torch.float64)
    for i in range(0, len(features), ROW_CHUNK):
        part = (features[i:i + ROW_CHUNK].double() - centre).to(x.dtype)
        x[i:i + ROW_CHUNK] = part
        sq[i:i + ROW_CHUNK] = part.double().pow(2).sum(1)
    return _Centred(x, sq)


def as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A tensor view of ``x`` (an array is wrapped, not copied or converted)."""
    return x if torch.is_tensor(x) else torch.from_numpy(np.asarray(x))


def row_norms(features: torch.Tensor) -> torch.Tensor:
    """float64 L2 norm of every row, a chunk at a time."""
    return torch.cat([features[i:i + ROW_CHUNK].double().norm(dim=1) for i in range(0, len(features), ROW_CHUNK)])


def matmul64(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """float64 x @ v (v a vector or a matrix), a chunk of rows of x taken to float64 at a time."""
    return torch.cat([x[i:i + ROW_CHUNK].double() @ v for i in range(0, len(x), ROW_CHUNK)])


def feature_mean(features: torch.Tensor) -> torch.Tensor:
    """float64 mean of the rows, a chunk at a time."""
    total = torch.zeros(features.shape[1], dtype=torch.float64)
    for i in range(0, len(features), ROW_CHUNK):
        total += features[i:i + ROW_CHUNK].double().sum(0)
    return total / len(features)


def _block(a: _Centred, rows: slice, b: _Centred) -> torch.Tensor:
    """float32 squared distances between a.x[rows] and every row of b.x (clamped at 0)."""
    q = a.x[rows]
    d2 = torch.addmm(b.sq.to(q.dtype).unsqueeze(0), q, b.x.T, beta=1.0, alpha=-2.0)
    d2.add_(a.sq[rows].to(q.dtype).unsqueeze(1))
    return d2.clamp_min_(0.0)


def _chunk_rows(pool: int) -> int:
    return max(16, min(4096, CHUNK_ELEMENTS // max(pool, 1)))


def knn_lists(query: torch.Tensor, pool: torch.Tensor, k: int, exact: int, centre: torch.Tensor,
              same: bool = False, qc: _Centred | None = None, pc: _Centred | None = None,
              on_block=None) -> KnnLists:
    """The ``k`` nearest pool rows of every query row (``same``: query is the pool, each row's own index left out),
    the first ``exact`` of them with float64 distances. ``on_block(rows, d2)``, when given, sees every block of
    screened squared distances (query ``rows`` against the whole pool) before it is reduced."""
    n, m = len(query), len(pool)
    k = min(k, m - 1 if same else m)
    exact = min(exact, k)
    qc = qc if qc is not None else _centre(query, centre)
    pc = pc if pc is not None else (qc if same else _centre(pool, centre))
    band = screen_band(query.shape[1])
    index = torch.empty(n, k, dtype=torch.int64)
    dist2 = torch.empty(n, k, dtype=torch.float64)
    step = _chunk_rows(m)
    for i in range(0, n, step):
        rows = slice(i, min(i + step, n))
        d2 = _block(qc, rows, pc)
        if on_block is not None:
            on_block(rows, d2)
        if same:
            r = torch.arange(rows.stop - rows.start)
            d2[r, r + i] = float("inf")
        val, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
        index[rows] = idx
        dist2[rows] = val.double()
    bands = band * (qc.sq.unsqueeze(1) + pc.sq[index])
    lists = KnnLists(index, dist2, 0, (dist2[:, -1] - bands[:, -1]).clamp_min(0.0) if k < (m - 1 if same else m)
                     else torch.full((n,), float("inf"), dtype=torch.float64), bands)
    _refine_leading(lists, query, pool, exact, same)
    return lists


def _refine_leading(lists: KnnLists, query: torch.Tensor, pool: torch.Tensor, exact: int, same: bool) -> None:
    """Make the first ``exact`` columns exact: recompute the first exact + EXACT_EXTRA candidates in float64 and
    re-sort them; rows where an unrefined candidate could still be nearer are recomputed in full."""
    n, k = lists.index.shape
    if exact == 0 or n == 0:
        lists.dist = lists.dist.sqrt()
        return
    look = min(k, exact + EXACT_EXTRA)
    rows = torch.arange(n).repeat_interleave(look)
    cols = lists.index[:, :look].reshape(-1)
    d2 = exact_sq_distances(query, pool, rows, cols).view(n, look)
    order = torch.argsort(d2, dim=1, stable=True)
    lead_idx = torch.gather(lists.index[:, :look], 1, order)
    lead_d2 = torch.gather(d2, 1, order)
    # the candidates past the refined ones (in the list or not) are at least this far
    if look < k:
        floor = (lists.dist[:, look] - lists.band[:, look]).clamp_min(0.0)
    else:
        floor = lists.beyond2
    doubtful = (lead_d2[:, exact - 1] > floor).nonzero(as_tuple=True)[0]
    dist2 = lists.dist.clone()
    dist2[:, :look] = lead_d2
    index = lists.index.clone()
    index[:, :look] = lead_idx
    band = lists.band.clone()
    band[:, :look] = 0.0
    beyond2 = lists.beyond2.clone()
    # near ties at the float32 boundary (rare in high dimension; common among the duplicates of a collapsed
    # generator in 2-d): those rows in full in float64, a chunk of rows at a time
    step = _chunk_rows(len(pool))
    for i in range(0, len(doubtful), step):
        rs = doubtful[i:i + step]
        d = exact_row_distances(query[rs], pool).pow_(2)
        if same:
            d[torch.arange(len(rs)), rs] = float("inf")
        val, idx = torch.topk(d, k, dim=1, largest=False, sorted=True)
        index[rs], dist2[rs], band[rs] = idx, val, 0.0
        beyond2[rs] = val[:, -1] if k < len(pool) - same else float("inf")
    lists.index, lists.dist, lists.band, lists.exact = index, dist2.clamp_min(0.0).sqrt(), band, exact
    lists.beyond2 = beyond2


def kth_among(lists: KnnLists, query: torch.Tensor, pool: torch.Tensor, allowed: torch.Tensor, k: int,
              pool_allowed: torch.Tensor | None = None, same: bool = False,
              exact2: torch.Tensor | None = None) -> torch.Tensor:
    """Exact distance from each query row to its k-th nearest *allowed* pool row.

    ``allowed`` (n, K) bool marks which listed candidates count (e.g. those in a reference subset, or outside a
    left-out group); ``pool_allowed(rows) -> (len(rows), M) bool`` gives the same for the whole pool, for the rows
    whose list holds too few allowed candidates (recomputed in float64). Returns (n,) float64 (inf when fewer
    than k pool rows are allowed). ``exact2`` (n, K), when given, holds the exact float64 squared distances of every
    listed candidate (``list_exact2``), so that nothing is refined per call.
    """
    n, kk = lists.index.shape
    out = torch.full((n,), float("inf"), dtype=torch.float64)
    # square distances of the listed candidates; exact columns are exact, the rest get refined below
    d2 = lists.dist.pow(2)
    rank = allowed.cumsum(1)
    enough = rank[:, -1] >= k
    rows = enough.nonzero(as_tuple=True)[0]
    if len(rows):
        # the float32 k-th allowed candidate and its band: refine every allowed candidate whose lower bound is
        # below the k-th's upper bound, then take the exact k-th among those
        a = allowed[rows]
        pos = (rank[rows] >= k).float().argmax(1)
        kth_hi = d2[rows].gather(1, pos[:, None])[:, 0] + lists.band[rows].gather(1, pos[:, None])[:, 0]
        lo = d2[rows] - lists.band[rows]
        need = a & (lo <= kth_hi[:, None])
        rr, cc = need.nonzero(as_tuple=True)
        ex = torch.full(a.shape, float("inf"), dtype=torch.float64)
        if exact2 is not None:
            ex[rr, cc] = exact2[rows[rr], cc]
        else:
            ex[rr, cc] = exact_sq_distances(query, pool, rows[rr], lists.index[rows][rr, cc])
        kth2 = ex.kthvalue(k, dim=1).values
        # complete only if every pool row not listed is farther than the k-th found
        complete = kth2 <= lists.beyond2[rows]
        out[rows[complete]] = kth2[complete].sqrt()
        missing = torch.cat([rows[~complete], (~enough).nonzero(as_tuple=True)[0]])
    else:
        missing = (~enough).nonzero(as_tuple=True)[0]
    if len(missing):
        if pool_allowed is None:
            raise ValueError("too few allowed neighbours in the lists and no pool mask to fall back on")
        step = _chunk_rows(pool.shape[0])
        for i in range(0, len(missing), step):
            part = missing[i:i + step]
            d = exact_row_distances(query[part], pool)
            d[~pool_allowed(part)] = float("inf")
            if same:
                d[torch.arange(len(part)), part] = float("inf")
            kk = min(k, d.shape[1])
            out[part] = d.kthvalue(kk, dim=1).values if kk == k else float("inf")
    return out


def list_exact2(lists: KnnLists, query: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """(n, K) exact float64 squared distances of every listed candidate (the exact columns squared back are not
    used: a square root and its square can differ in the last bit)."""
    n, k = lists.index.shape
    return exact_sq_distances(query, pool, torch.arange(n).repeat_interleave(k), lists.index.reshape(-1)).view(n, k)


def too_few_for_pass(n: int, m: int, k_prc: int, k_dc: int) -> str | None:
    """Why a neighbour pass cannot run on n generated and m reference samples at these k's, or None when it can."""
    k_max = max(k_prc, k_dc)
    if m <= k_max or n <= k_prc:
        return f"the neighbour metrics need more than {k_max} reference and {k_prc} generated samples, got {m} and {n}"
    return None


def jackknife_groups(n: int, groups: int, seed: int, partitions: int = 1) -> torch.Tensor:
    """(partitions, n) group of each of n samples in each of ``partitions`` seeded random splits into ``groups``
    groups whose sizes differ by at most one."""
    rng = np.random.default_rng(seed)
    out = torch.empty(partitions, n, dtype=torch.int64)
    for p in range(partitions):
        out[p, torch.from_numpy(rng.permutation(n))] = torch.arange(n) % groups
    return out


def reference_subsets(m: int, n: int, subsets: int, seed: int) -> list[torch.Tensor] | None:
    """Density/coverage compare equally large sets: ``subsets`` sorted random subsets of n of the m reference rows
    (None when the reference is no larger than the generated set). Drawn as ``prdc.density_coverage`` always drew."""
    if m <= n:
        return None
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(np.sort(rng.choice(m, n, replace=False))) for _ in range(subsets)]


class _Decider:
    """Decides ``d2 <= t`` (or ``<``) over a float32 block with the screen's band, re-deciding the pairs inside the
    band exactly; thresholds are exact float64 squared radii, per column or per row. The band of a block uses its
    largest query norm (one margin per column), which only widens it."""

    def __init__(self, qc: _Centred, pc: _Centred, query: torch.Tensor, pool: torch.Tensor, band: float):
        self.qc, self.pc, self.query, self.pool, self.band = qc, pc, query, pool, band
        self.pool_margin = (band * pc.sq).to(pc.x.dtype)  # per column
        self.exact_pairs = 0

    def margin(self, rows: slice) -> torch.Tensor:
        """Per-column band for the block of query ``rows`` (1, M)."""
        return (self.pool_margin + float(self.band * self.qc.sq[rows].max())).unsqueeze(0)

    def decide(self, d2: torch.Tensor, rows: slice, margin: torch.Tensor, t_col: torch.Tensor | None = None,
               t_row: torch.Tensor | None = None, strict: bool = False) -> torch.Tensor:
        """(B, M) bool: exact ``d < t`` (strict) or ``d <= t`` for the block of query ``rows``."""
        if t_col is not None:
            t = t_col.to(d2.dtype).unsqueeze(0)
            sure = d2 < (t - margin)
            doubt = (d2 <= (t + margin)) & ~sure
        else:
            t = t_row.to(d2.dtype).unsqueeze(1)
            sure = (d2 + margin) < t
            doubt = ((d2 - margin) <= t) & ~sure
        if doubt.any():
            r, c = doubt.nonzero(as_tuple=True)
            self.exact_pairs += len(r)
            ex = exact_sq_distances(self.query, self.pool, r + rows.start, c)
            thr = t_col.double()[c] if t_col is not None else t_row.double()[r]
            sure[r, c] = ex < thr if strict else ex <= thr
        return sure


def _onehot(groups: torch.Tensor, g: int) -> torch.Tensor:
    """(R * g, B) float32: row p * g + j marks the block rows in group j of partition p."""
    return torch.cat([torch.nn.functional.one_hot(part, g).T.float() for part in groups])


def _partition_bits(mask: torch.Tensor, part: int, groups: int) -> torch.Tensor:
    """The ``groups`` bits of partition ``part`` in a jackknife mask."""
    return (mask >> (part * groups)) & ((1 << groups) - 1)


def _group_masks(inside: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """(M,) int64 bit mask per column: bit g set when a row of group g is inside. ``onehot`` is (G, B) float32, the
    block rows' groups; one small matrix product counts the rows of each group inside each column."""
    counts = onehot @ inside.float()
    bits = (counts > 0).to(torch.int64) << torch.arange(onehot.shape[0]).unsqueeze(1)
    return bits.sum(0)


class RbfSums:
    """CMMD's kernel sums (Gaussian RBF on unit-normalised features, ``mmd.rbf_mmd``) from the pass's blocks.

    On rows scaled to unit norm, |x/|x| - y/|y||^2 = (|x - y|^2 - (|x| - |y|)^2) / (|x| |y|): an elementwise function
    of the screened raw squared distance and the two norms, so the three kernel sums of the MMD come from the blocks
    the pass computes anyway instead of three more N x M scans. What is summed is e = k - 1 = expm1(-t / (2 sigma^2))
    (about -0.01): the constant parts of the V-statistic cancel exactly (diagonals have e = 0), and e keeps its
    relative precision where k would round near 1. Sums are float64: over the generated x generated blocks by
    jackknife group pair (G x G), over generated x reference per generated row, over reference x reference in total.
    """

    def __init__(self, gen: torch.Tensor, ref: torch.Tensor, sigma: float, groups: torch.Tensor, n_groups: int,
                 dtype: torch.dtype):
        self.sigma = sigma
        self.scale = -1.0 / (2 * sigma ** 2)
        gn, rn = row_norms(gen), row_norms(ref)
        self.zero_rows = int((gn == 0).sum() + (rn == 0).sum())  # a zero row has no direction: mmd computes directly
        self.gen_norm, self.ref_norm = gn.to(dtype), rn.to(dtype)
        self.gen_inv = torch.where(gn > 0, 1 / gn, torch.zeros_like(gn)).to(dtype)
        self.ref_inv = torch.where(rn > 0, 1 / rn, torch.zeros_like(rn)).to(dtype)
        self.onehot = torch.nn.functional.one_hot(groups, n_groups).T.double()  # (G, N)
        self.gen_gen = torch.zeros(n_groups, n_groups, dtype=torch.float64)
        self.gen_ref_rows = torch.zeros(len(gen), dtype=torch.float64)
        self.ref_ref = torch.zeros((), dtype=torch.float64)

    def _e(self, d2: torch.Tensor, a: torch.Tensor, a_inv: torch.Tensor, b: torch.Tensor, b_inv: torch.Tensor
           ) -> torch.Tensor:
        t = a.unsqueeze(1) - b.unsqueeze(0)
        t.square_()
        torch.sub(d2, t, out=t)
        t.mul_(a_inv.unsqueeze(1)).mul_(b_inv.unsqueeze(0))
        return t.clamp_min_(0.0).mul_(self.scale).expm1_()

    def add_gen_gen(self, rows: slice, d2: torch.Tensor) -> None:
        e = self._e(d2, self.gen_norm[rows], self.gen_inv[rows], self.gen_norm, self.gen_inv)
        r = torch.arange(rows.stop - rows.start)
        e[r, r + rows.start] = 0.0
        self.gen_gen += (self.onehot[:, rows] @ e.double()) @ self.onehot.T

    def add_gen_ref(self, rows: slice, d2: torch.Tensor) -> None:
        e = self._e(d2, self.gen_norm[rows], self.gen_inv[rows], self.ref_norm, self.ref_inv)
        self.gen_ref_rows[rows] = e.sum(1, dtype=torch.float64)

    def add_ref_ref(self, rows: slice, d2: torch.Tensor) -> None:
        e = self._e(d2, self.ref_norm[rows], self.ref_inv[rows], self.ref_norm, self.ref_inv)
        r = torch.arange(rows.stop - rows.start)
        e[r, r + rows.start] = 0.0
        self.ref_ref += e.sum(dtype=torch.float64)


@dataclass
class NeighbourPass:
    """Everything the neighbour-based metrics read, from one pass over the distances (see the module docstring).

    Radii are exact float64 distances to the k-th nearest other row of the same set (prc's k for precision,
    recall and realism; dc's k for density and coverage).
    """

    gen: torch.Tensor
    ref: torch.Tensor
    heldout: torch.Tensor | None = None
    k_prc: int = 3  # Kynkäänniemi et al.'s k (precision, recall, realism)
    k_dc: int = 5  # Naeem et al.'s k (density, coverage)
    recall_design: tuple[int, int] = (3, 8)  # recall's jackknife: groups per partition, random partitions averaged
    coverage_design: tuple[int, int] = (10, 2)  # coverage's jackknife: the same
    subsets: int = 10  # reference subsets of the generated count for density/coverage when the reference is larger
    seed: int = 0
    list_k: int = 50  # neighbours kept per generated and held-out sample in the reference (Carlini's n)
    kernel: bool = True  # accumulate the cubic-kernel means of KID's variance
    rbf_sigma: float | None = 10.0  # accumulate CMMD's RBF kernel sums at this bandwidth (None: not)
    rbf_groups: int = 10  # jackknife groups of the RBF MMD's interval
    stats: dict = field(default_factory=dict)  # counters: exact re-decisions, fallbacks, seconds

    def __post_init__(self) -> None:
        import time

        t0 = time.perf_counter()
        gen, ref = self.gen.float(), self.ref.float()
        self.gen, self.ref = gen, ref
        n, m, d = gen.shape[0], ref.shape[0], gen.shape[1]
        if ref.shape[1] != d:
            raise ValueError(f"feature dimensions differ: generated {d}, reference {ref.shape[1]}")
        k_max = max(self.k_prc, self.k_dc)
        refusal = too_few_for_pass(n, m, self.k_prc, self.k_dc)
        if refusal is not None:
            raise ValueError(refusal)
        self.centre = feature_mean(ref)
        rc, gc = _centre(ref, self.centre), _centre(gen, self.centre)
        band = screen_band(d)
        self.subset_index = reference_subsets(m, n, self.subsets, self.seed)
        self.dc_unavailable = None
        if self.subset_index is not None and n <= self.k_dc:
            # the other metrics of the pass still stand; density and coverage refuse when read
            self.dc_unavailable = (f"density/coverage compare the generated samples with reference subsets of their "
                                   f"size; k={self.k_dc} needs more than {self.k_dc} generated samples, got {n}")
            self.subset_index = None
        for groups, partitions in (self.recall_design, self.coverage_design):
            if groups * partitions > 62 or groups < 2:
                raise ValueError(f"a jackknife design needs 2 <= groups and groups x partitions <= 62 (the bits of its "
                                 f"masks), got {groups} x {partitions}")
        self.recall_group = jackknife_groups(n, *self.recall_design[:1], self.seed, self.recall_design[1])
        self.coverage_group = jackknife_groups(n, *self.coverage_design[:1], self.seed + 1, self.coverage_design[1])

        self.rbf = None
        if self.rbf_sigma is not None and n >= 4:
            g = min(self.rbf_groups, n // 2)
            self.rbf = RbfSums(gen, ref, self.rbf_sigma, jackknife_groups(n, g, self.seed + 2)[0], g,
                               screen_dtype(d))

        # 1. reference within reference: radii (exact) and enough neighbours for subset radii
        ref_k = k_max + LIST_EXTRA
        if self.subset_index is not None:
            ref_k = max(ref_k, int(math.ceil(2 * (self.k_dc + 2) * m / n)) + LIST_EXTRA)
        self.ref_knn = knn_lists(ref, ref, min(ref_k, 256), k_max + 1, self.centre, same=True, qc=rc, pc=rc,
                                 on_block=self.rbf.add_ref_ref if self.rbf is not None else None)
        self.ref_radius_prc = self.ref_knn.kth(self.k_prc)
        self.ref_radius_dc = self.ref_knn.kth(self.k_dc)
        self.ref_radius_1 = self.ref_knn.kth(1)
        if self.subset_index is None:
            self.subset_radius_dc = [self.ref_radius_dc]
            subsets = [torch.arange(m)]
        else:
            subsets = self.subset_index
            self.subset_radius_dc = [self._subset_radius(s) for s in subsets]

        # 2. generated within generated: radii, and radii with each jackknife group left out
        self.gen_knn = knn_lists(gen, gen, min(self.k_prc + LIST_EXTRA + 2 * math.ceil(self.k_prc * 1.0), n - 1),
                                 self.k_prc + 1, self.centre, same=True, qc=gc, pc=gc,
                                 on_block=self.rbf.add_gen_gen if self.rbf is not None else None)
        self.gen_radius_prc = self.gen_knn.kth(self.k_prc)
        self.gen_radius_left_out = self._gen_radii_left_out()  # (G, N): inf for the left-out group's own rows

        # 3. generated against reference: one scan
        self.gen_ref_knn = self._cross_scan(gc, rc, subsets, band)

        # 4. held-out against reference
        self.held_ref_knn = None
        if self.heldout is not None:
            self.heldout = self.heldout.float()
            hc = _centre(self.heldout, self.centre)
            self.held_ref_knn = knn_lists(self.heldout, ref, self.list_k, 2, self.centre, qc=hc, pc=rc)
        self.stats["seconds"] = time.perf_counter() - t0

    # -- pieces ---------------------------------------------------------------------------------------------------

    def _subset_radius(self, subset: torch.Tensor) -> torch.Tensor:
        """Exact k_dc-th neighbour distance of each reference row within ``subset`` (inf outside it)."""
        m = self.ref.shape[0]
        member = torch.zeros(m, dtype=torch.bool)
        member[subset] = True
        lists = KnnLists(self.ref_knn.index[subset], self.ref_knn.dist[subset], self.ref_knn.exact,
                         self.ref_knn.beyond2[subset], self.ref_knn.band[subset])
        allowed = member[lists.index]
        q = self.ref[subset]

        def pool_allowed(rows: torch.Tensor) -> torch.Tensor:
            mask = member.unsqueeze(0).repeat(len(rows), 1)
            mask[torch.arange(len(rows)), subset[rows]] = False  # not itself
            return mask

        radius_in_subset = kth_among(lists, q, self.ref, allowed, self.k_dc, pool_allowed)
        out = torch.full((m,), float("-inf"), dtype=torch.float64)  # -inf: contains nothing
        out[subset] = radius_in_subset
        return out

    def _gen_radii_left_out(self) -> torch.Tensor:
        n = self.gen.shape[0]
        G, R = self.recall_design
        out = torch.full((R * G, n), float("-inf"), dtype=torch.float64)
        # every listed candidate's exact distance, once for all the replicates
        exact2 = list_exact2(self.gen_knn, self.gen, self.gen)
        for b in range(R * G):
            part, g = divmod(b, G)
            member_group = self.recall_group[part][self.gen_knn.index]
            keep = self.recall_group[part] != g
            rows = keep.nonzero(as_tuple=True)[0]
            lists = KnnLists(self.gen_knn.index[rows], self.gen_knn.dist[rows], self.gen_knn.exact,
                             self.gen_knn.beyond2[rows], self.gen_knn.band[rows])

            def pool_allowed(sub: torch.Tensor, rows=rows, keep=keep) -> torch.Tensor:
                mask = keep.unsqueeze(0).repeat(len(sub), 1)
                mask[torch.arange(len(sub)), rows[sub]] = False
                return mask

            out[b, rows] = kth_among(lists, self.gen[rows], self.gen, member_group[rows] != g, self.k_prc,
                                     pool_allowed, exact2=exact2[rows])
        return out

    def _cross_scan(self, gc: _Centred, rc: _Centred, subsets: list[torch.Tensor], band: float) -> KnnLists:
        gen, ref = self.gen, self.ref
        n, m, d = gen.shape[0], ref.shape[0], gen.shape[1]
        S = len(subsets)
        decide = _Decider(gc, rc, gen, ref, band)
        k_list = min(self.list_k, m)
        index = torch.empty(n, k_list, dtype=torch.int64)
        dist2 = torch.empty(n, k_list, dtype=torch.float64)
        self.precision_in = torch.zeros(n, dtype=torch.bool)
        self.density_count = torch.zeros(S, n, dtype=torch.float64)  # reference balls containing each sample
        # bit p * G + g: a sample of group g of partition p inside reference ball j (coverage), or reference sample j
        # inside a full-radius generated ball of such a sample (recall)
        self.coverage_groups = torch.zeros(S, m, dtype=torch.int64)
        self.recall_groups = torch.zeros(m, dtype=torch.int64)
        # recall with each jackknife group left out: the shell pairs (a generated ball's full radius < distance <=
        # its largest left-out radius) are decided per block, below
        (G, R) = self.recall_design
        self.recall_in_left_out = torch.zeros(R * G, m, dtype=torch.bool)
        left_out2 = torch.where(self.gen_radius_left_out > 0, self.gen_radius_left_out.pow(2),
                                torch.full_like(self.gen_radius_left_out, -1.0))  # (R * G, N); -1: contains nothing
        self.stats["shell_pairs"] = 0
        self.realism = torch.empty(n, dtype=torch.float64)
        self.kernel_mean = torch.empty(n, dtype=torch.float64) if self.kernel else None
        r_prc2 = self.ref_radius_prc.pow(2)
        r_dc2 = [torch.where(r > 0, r.pow(2), torch.full_like(r, -1.0)) for r in self.subset_radius_dc]
        g_prc2 = self.gen_radius_prc.pow(2)
        g_max2 = self.gen_radius_left_out.max(0).values.pow(2)  # the largest radius any left-out group gives
        # realism: the pruned reference (half the balls, those with the smallest radii), float32
        keep_realism = self.ref_radius_prc <= self.ref_radius_prc.median()
        dt = gc.x.dtype  # the screen's precision
        realism_r2 = torch.where(keep_realism, r_prc2, torch.zeros_like(r_prc2)).to(dt).unsqueeze(0)
        tiny = torch.finfo(dt).tiny
        if self.kernel:
            # k(x, y) = (x.y / d + 1)^3 on the raw features; x.y = |xc|^2/2 + |yc|^2/2 - d2/2 + xc.c + yc.c + c.c
            c = self.centre
            row_term = ((gc.sq / 2 + matmul64(gc.x, c) + c @ c) / d + 1).to(dt)
            col_term = ((rc.sq / 2 + matmul64(rc.x, c)) / d).to(dt).unsqueeze(0)
        step = _chunk_rows(m)
        for i in range(0, n, step):
            rows = slice(i, min(i + step, n))
            d2 = _block(gc, rows, rc)
            if self.rbf is not None:
                self.rbf.add_gen_ref(rows, d2)
            onehot_cov = _onehot(self.coverage_group[:, rows], self.coverage_design[0])
            onehot_rec = _onehot(self.recall_group[:, rows], self.recall_design[0])
            margin = decide.margin(rows)
            val, idx = torch.topk(d2, k_list, dim=1, largest=False, sorted=True)
            index[rows], dist2[rows] = idx, val.double()
            # precision: inside some reference ball (<=, as torch-fidelity)
            self.precision_in[rows] = decide.decide(d2, rows, margin, t_col=r_prc2).any(1)
            # density (<, as prdc) per reference subset, and which groups reach into each ball (coverage)
            for s in range(S):
                ins = decide.decide(d2, rows, margin, t_col=r_dc2[s], strict=True)
                self.density_count[s, rows] = ins.sum(1, dtype=torch.float64)
                self.coverage_groups[s] |= _group_masks(ins, onehot_cov)
                del ins
            # recall: reference samples inside a generated ball (<=); and the shell where left-out radii reach
            ins = decide.decide(d2, rows, margin, t_row=g_prc2[rows])
            self.recall_groups |= _group_masks(ins, onehot_rec)
            del ins
            lo = (g_prc2[rows].to(dt).unsqueeze(1) - margin)
            hi = (g_max2[rows].to(dt).unsqueeze(1) + margin)
            r_, c_ = ((d2 >= lo) & (d2 <= hi)).nonzero(as_tuple=True)
            self._shell(r_ + i, c_, d2[r_, c_].double(), left_out2, gc, rc, band)
            # realism: max_j r_j / d_ij over the pruned reference
            self.realism[rows] = (realism_r2 / d2.clamp_min(tiny)).max(1).values.double().sqrt()
            if self.kernel:
                k = torch.add(col_term, d2, alpha=-0.5 / d).add_(row_term[rows].unsqueeze(1))
                self.kernel_mean[rows] = k.pow_(3).mean(1, dtype=torch.float64)
                del k
            del d2
        self.stats["exact_pairs"] = decide.exact_pairs
        self._recall_left_out()
        bands = band * (gc.sq.unsqueeze(1) + rc.sq[index])
        beyond = ((dist2[:, -1] - bands[:, -1]).clamp_min(0.0) if k_list < m
                  else torch.full((n,), float("inf"), dtype=torch.float64))
        lists = KnnLists(index, dist2, 0, beyond, bands)
        _refine_leading(lists, gen, ref, 2, same=False)
        return lists

    def _shell(self, rows: torch.Tensor, cols: torch.Tensor, d2: torch.Tensor, left_out2: torch.Tensor,
               gc: _Centred, rc: _Centred, band: float) -> None:
        """Decide the shell pairs of one block (generated ``rows``, reference ``cols``, screened squared distances
        ``d2``) against every left-out radius: inside when d <= the row's radius with the group left out. Pairs whose
        screened distance is within the pair's band of a radius are re-decided on float64 distances."""
        self.stats["shell_pairs"] += len(rows)
        if not len(rows):
            return
        r2 = left_out2[:, rows]  # (R * G, P) exact squared radii
        margin = band * (gc.sq[rows] + rc.sq[cols])  # (P,) the pair's bound on |d2 - exact|
        inside = (d2 + margin).unsqueeze(0) < r2
        doubt = ((d2 - margin).unsqueeze(0) <= r2) & ~inside
        if doubt.any():
            pairs = doubt.any(0).nonzero(as_tuple=True)[0]
            exact = exact_sq_distances(self.gen, self.ref, rows[pairs], cols[pairs])
            inside[:, pairs] |= doubt[:, pairs] & (exact.unsqueeze(0) <= r2[:, pairs])
            self.stats["shell_exact_pairs"] = self.stats.get("shell_exact_pairs", 0) + len(pairs)
        b, p = inside.nonzero(as_tuple=True)
        self.recall_in_left_out[b, cols[p]] = True

    def _recall_left_out(self) -> None:
        """Recall with each group of generated samples left out, the remaining samples' radii recomputed.

        Leaving samples out only grows the others' radii, so a reference sample inside a full-radius ball of a
        group other than g stays covered; the others can only be covered through the shell pairs (full radius <
        distance <= the largest left-out radius), decided block by block in ``_shell``."""
        G, R = self.recall_design
        for b in range(R * G):
            self.recall_in_left_out[b] |= (_partition_bits(self.recall_groups, b // G, G) & ~(1 << (b % G))) != 0
        # replicate p * G + g leaves out group g of partition p: (R * G, M)

    # -- what the metrics read ------------------------------------------------------------------------------------

    @property
    def recall_in(self) -> torch.Tensor:
        """Reference samples inside some generated k-NN ball (<=, as torch-fidelity)."""
        return self.recall_groups != 0

    def coverage_in(self, s: int, left_out: int | None = None) -> torch.Tensor:
        """Reference samples of subset ``s`` whose dc ball contains a generated sample (strict, as prdc), over the
        subset's rows; with jackknife replicate ``left_out`` (p * G + g: group g of partition p) left out."""
        self._check_dc()
        G = self.coverage_design[0]
        mask = self.coverage_groups[s]
        if left_out is not None:
            mask = _partition_bits(mask, left_out // G, G) & ~(1 << (left_out % G))
        rows = self.subset_index[s] if self.subset_index is not None else slice(None)
        return (mask != 0)[rows]

    def density_values(self) -> torch.Tensor:
        """Per generated sample: reference balls containing it over k_dc, averaged over the reference subsets."""
        self._check_dc()
        return self.density_count.mean(0) / self.k_dc

    def _check_dc(self) -> None:
        if self.dc_unavailable is not None:
            raise ValueError(self.dc_unavailable)

    def gen_nearest_ref(self) -> torch.Tensor:
        """Exact distance from each generated sample to its nearest reference sample."""
        return self.gen_ref_knn.dist[:, 0]

    def heldout_nearest_ref(self) -> torch.Tensor:
        if self.held_ref_knn is None:
            raise ValueError("this neighbour pass has no held-out features")
        return self.held_ref_knn.dist[:, 0]


def neighbours(inputs, **kwargs) -> NeighbourPass:
    """The evaluation's neighbour pass, computed once and cached on ``inputs`` (a ``MetricInputs``)."""
    cached = inputs._cache.get("neighbours")
    if cached is None:
        held = inputs.heldout[inputs.feature_layer] if inputs.heldout is not None else None
        cached = NeighbourPass(inputs.feature("gen"), inputs.feature("ref"), held, seed=inputs.seed, **kwargs)
        inputs._cache["neighbours"] = cached
    return cached


__all__ = ["KnnLists", "NeighbourPass", "RbfSums", "as_tensor", "feature_mean", "exact_row_distances", "exact_sq_distances", "jackknife_groups", "kth_among",
           "knn_lists", "list_exact2", "matmul64", "neighbours", "reference_subsets", "screen_band", "screen_dtype", "too_few_for_pass"]
