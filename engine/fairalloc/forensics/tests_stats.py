"""Statistical tests of the forensic review: re-allocation Monte Carlo, exact binomial, BH.

All tests are one-sided in the direction of favouritism ("the favoured group did better"). Every
function here is pure: inputs are arrays of statistics (float64 returns, 0/1 winners), outputs are
plain numbers; randomness comes only from the ``numpy.random.Generator`` passed in.

Why three p-values for one question:

* the **Monte Carlo** re-allocation p-value is the most direct ("how often does a random
  re-allocation of the same allocations do as well for the favoured group?"), reported as
  ``(k + 1) / (N + 1)`` for ``k`` of ``N`` draws at least as extreme, so it can never be below
  ``1 / (N + 1)``;
* the **normal approximation** to the same re-allocation distribution (its mean and variance are
  known exactly) reaches the far tail, where a Welhouse-sized gap lives (p < 10⁻⁶);
* the **exact binomial** test on winners needs no approximation at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

#: Array elements one Monte Carlo chunk may hold (keeps memory near 100 MB).
CHUNK_ELEMENTS = 12_000_000
#: Default work (draws × pool size) one re-allocation test may spend re-dealing rows exactly;
#: beyond it the Monte Carlo re-deals cells of similar returns (all draws are still made).
DEFAULT_WORK_BUDGET = 60_000_000
#: Largest group size re-dealt by partial Fisher–Yates rather than a full shuffle.
PARTIAL_SHUFFLE_MAX = 32
#: Cells of the binned path, and the cost of one hypergeometric draw in budget units.
MIN_CELLS, MAX_CELLS, HYPERGEOMETRIC_COST = 16, 32, 8
#: Cost of one shuffled element of the order-level permutation test, in budget units.
PERMUTATION_COST = 4
#: Fewer "as extreme" draws than this and the Monte Carlo cannot resolve the p-value.
MC_RESOLUTION_HITS = 10


@dataclass(frozen=True, slots=True)
class ReallocationResult:
    """Outcome of one re-allocation test of the favoured group's mean return and win share."""

    n_favoured: int
    n_rest: int
    mean_favoured: float
    mean_rest: float
    win_share_favoured: float
    win_share_rest: float
    draws: int
    method: str  # "exact" (rows re-dealt) or "binned" (cells of similar returns re-dealt)
    cells: int  # number of cells on the binned path, 0 on the exact path
    hits_mean: int
    hits_wins: int
    p_mc_mean: float
    p_mc_wins: float
    z_mean: float
    p_normal_mean: float
    p_binomial_wins: float

    @property
    def p_value(self) -> float:
        """The headline p-value of the mean-return test.

        The Monte Carlo p-value while it is resolved (at least ``MC_RESOLUTION_HITS`` draws as
        extreme); beyond its resolution (or when no draw was affordable), the normal approximation
        to the same re-allocation distribution.
        """
        if self.draws > 0 and self.hits_mean >= MC_RESOLUTION_HITS:
            return self.p_mc_mean
        return self.p_normal_mean


def normal_upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal, accurate far into the tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """Exact P(X >= k) for X ~ Binomial(n, p), summed in log space so tiny tails stay accurate."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    x = np.arange(k, n + 1, dtype=np.float64)
    log_first = (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
    )
    # pmf(x+1)/pmf(x) = (n-x)/(x+1) * p/(1-p)
    ratios = np.log((n - x[:-1]) / (x[:-1] + 1.0)) + math.log(p) - math.log1p(-p)
    logs = log_first + np.concatenate(([0.0], np.cumsum(ratios)))
    top = float(logs.max())
    return float(min(1.0, math.exp(top) * float(np.exp(logs - top).sum())))


def benjamini_hochberg(p_values: F64) -> F64:
    """BH-adjusted p-values (q-values): flag where q <= alpha to control the false discovery rate.

    Contract: same order as the input; monotone in the input p-values; each q >= its p; q <= 1.
    """
    n = p_values.shape[0]
    if n == 0:
        return p_values.copy()
    order = np.argsort(p_values, kind="stable")
    ranked = p_values[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(n, dtype=np.float64)
    q[order] = np.minimum(adjusted, 1.0)
    return q


def _subset_sums(
    values: F64, wins: F64, m: int, draws: int, rng: np.random.Generator
) -> tuple[F64, F64]:
    """Sums of ``values`` and ``wins`` over ``draws`` random subsets of size ``m`` (no replacement).

    Exact and vectorised over draws: for a small ``m`` a partial Fisher–Yates shuffle of a tile
    of row indices (``m`` column steps), otherwise ``Generator.permuted`` on the whole tile.
    """
    n = values.shape[0]
    out_values = np.empty(draws, dtype=np.float64)
    out_wins = np.empty(draws, dtype=np.float64)
    chunk = max(1, min(draws, CHUNK_ELEMENTS // max(n, 1)))
    base = np.arange(n, dtype=np.int32)
    done = 0
    while done < draws:
        size = min(chunk, draws - done)
        if m <= PARTIAL_SHUFFLE_MAX:
            tile = np.tile(base, (size, 1))
            rows = np.arange(size)
            for j in range(m):
                swap = rng.integers(j, n, size=size)
                held = tile[rows, swap]
                tile[rows, swap] = tile[:, j]
                tile[:, j] = held
        else:
            tile = rng.permuted(np.broadcast_to(base, (size, n)), axis=1)
        picks = tile[:, :m]
        out_values[done : done + size] = values[picks].sum(axis=1)
        out_wins[done : done + size] = wins[picks].sum(axis=1)
        done += size
    return out_values, out_wins


def bin_cells(values: F64, cells: int) -> tuple[F64, F64, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Group values into at most ``cells`` quantile cells per sign of winning.

    Returns (cell value = mean of its members, cell win flag, cell sizes, cell of each value).
    """
    wins = values > 0
    edges = np.unique(np.quantile(values, np.linspace(0, 1, cells + 1)[1:-1]))
    cell = np.searchsorted(edges, values, side="right") * 2 + wins
    keys, inverse, sizes = np.unique(cell, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=values) / sizes
    return means, (keys % 2).astype(np.float64), sizes.astype(np.int64), inverse.astype(np.int64)


def _binned_sums(
    cell_values: F64, cell_wins: F64, sizes: npt.NDArray[np.int64], m: int, draws: int,
    rng: np.random.Generator,
) -> tuple[F64, F64]:
    """Random m-subset sums drawn cell by cell (a multivariate hypergeometric, sequentially)."""
    remaining_total = int(sizes.sum())
    remaining = np.full(draws, m, dtype=np.int64)
    sums = np.zeros(draws)
    win_sums = np.zeros(draws)
    for value, win, size in zip(cell_values, cell_wins, sizes, strict=True):
        taken = rng.hypergeometric(int(size), remaining_total - int(size), remaining)
        sums += taken * value
        win_sums += taken * win
        remaining -= taken
        remaining_total -= int(size)
    return sums, win_sums


def permutation_product_test(
    weights: F64, outcomes: F64, draws: int, rng: np.random.Generator,
    work_budget: int = DEFAULT_WORK_BUDGET,
) -> tuple[float, float, int, int, float]:
    """One-sided test that ``sum(weights * outcomes)`` is larger than under shuffled outcomes.

    Used to ask whether deviations from intent line up with how orders did by the close. Returns
    (statistic, z, draws made, hits, normal-approximation p); the Monte Carlo p is
    ``(hits + 1) / (draws + 1)``. Draws are capped so that ``draws × n × PERMUTATION_COST`` stays
    within ``work_budget``; the draws actually made are reported.
    """
    n = weights.shape[0]
    canonical = np.lexsort((outcomes, weights))
    weights, outcomes = weights[canonical], outcomes[canonical]
    statistic = float(weights @ outcomes)
    if n < 2:
        return statistic, 0.0, 0, 0, 1.0
    mean = float(weights.sum()) * float(outcomes.sum()) / n
    w = weights - weights.mean()
    o = outcomes - outcomes.mean()
    variance = float(w @ w) * float(o @ o) / (n - 1)
    z = (statistic - mean) / math.sqrt(variance) if variance > 0 else 0.0
    p_normal = normal_upper_tail(z) if variance > 0 else 1.0
    effective = min(draws, work_budget // (PERMUTATION_COST * n))
    hits = 0
    chunk = max(1, CHUNK_ELEMENTS // n)
    done = 0
    tolerance = 1e-12 * max(1.0, abs(statistic))
    while done < effective:
        size = min(chunk, effective - done)
        shuffled = rng.permuted(np.broadcast_to(outcomes, (size, n)), axis=1)
        hits += int((shuffled @ weights >= statistic - tolerance).sum())
        done += size
    return statistic, z, effective, hits, p_normal


def reallocation_test(
    returns: F64,
    favoured: Bool,
    draws: int,
    rng: np.random.Generator,
    work_budget: int = DEFAULT_WORK_BUDGET,
) -> ReallocationResult | None:
    """Test whether the favoured allocations' first-day returns beat a random re-allocation.

    ``returns`` are the signed first-day returns of the allocations in the comparison pool and
    ``favoured`` marks the favoured group's. The null hypothesis: which allocations went to the
    favoured group is unrelated to how they did, so every re-labelling of the pool that keeps the
    group sizes is equally likely. Statistics: difference in mean return and in win share.

    The Monte Carlo always makes ``draws`` draws. While ``draws × pool size`` fits in
    ``work_budget`` it re-deals the rows themselves (``method == "exact"``); beyond that it
    re-deals quantile cells of similar returns, split by winning and losing
    (``method == "binned"``), which is an exact permutation test of the statistic computed on
    cell means and costs ``draws × cells`` whatever the pool size. Returns ``None`` when either
    group is empty.
    """
    n = returns.shape[0]
    m = int(favoured.sum())
    if m == 0 or m == n:
        return None
    # Canonical order: the result depends on the allocations, never on the order of the rows.
    canonical = np.lexsort((favoured, returns))
    returns, favoured = returns[canonical], favoured[canonical]
    wins = (returns > 0).astype(np.float64)
    fav_sum = float(returns[favoured].sum())
    total = float(returns.sum())
    fav_wins = int(wins[favoured].sum())
    total_wins = int(wins.sum())
    n_rest = n - m
    mean_f = fav_sum / m
    mean_r = (total - fav_sum) / n_rest
    exact = draws * n <= work_budget
    method = "exact" if exact else "binned"
    cells = 0
    hits_mean = hits_wins = 0
    if draws > 0:
        small = m if m <= n_rest else n_rest
        if exact:
            sums, win_sums = _subset_sums(returns, wins, small, draws, rng)
            observed = fav_sum
            pool_total = total
        else:
            # Too large to re-deal row by row: re-deal cells of similar returns instead (an exact
            # permutation test of the statistic computed on the cell means).
            cells = max(MIN_CELLS, min(MAX_CELLS, work_budget // (draws * HYPERGEOMETRIC_COST)))
            cell_values, cell_wins, sizes, cell_of = bin_cells(returns, cells)
            binned = cell_values[cell_of]
            sums, win_sums = _binned_sums(cell_values, cell_wins, sizes, small, draws, rng)
            observed = float(binned[favoured].sum())
            pool_total = float(binned.sum())
            cells = int(sizes.size)
        if small != m:
            sums, win_sums = pool_total - sums, total_wins - win_sums
        tolerance = 1e-9 * max(1.0, float(np.abs(returns).sum()) / n) * m
        hits_mean = int((sums >= observed - tolerance).sum())
        hits_wins = int((win_sums >= fav_wins).sum())
    centred = returns - total / n
    variance = float(centred @ centred) / (n - 1) * (1.0 / m + 1.0 / n_rest)
    z = (mean_f - mean_r) / math.sqrt(variance) if variance > 0 else 0.0
    p_normal = normal_upper_tail(z) if variance > 0 else 1.0
    rest_wins = total_wins - fav_wins
    p0 = rest_wins / n_rest
    return ReallocationResult(
        n_favoured=m,
        n_rest=n_rest,
        mean_favoured=mean_f,
        mean_rest=mean_r,
        win_share_favoured=fav_wins / m,
        win_share_rest=rest_wins / n_rest,
        draws=draws,
        method=method,
        cells=cells,
        hits_mean=hits_mean,
        hits_wins=hits_wins,
        p_mc_mean=(hits_mean + 1) / (draws + 1),
        p_mc_wins=(hits_wins + 1) / (draws + 1),
        z_mean=z,
        p_normal_mean=p_normal,
        p_binomial_wins=binomial_upper_tail(fav_wins, m, p0),
    )
