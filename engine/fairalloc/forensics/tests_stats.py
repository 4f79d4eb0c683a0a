"""Statistical tests of the forensic review: within-order re-allocation, exact tails, BH.

Every test here is one-sided in the direction of favouritism ("the group did better than chance
would give it"): a group that did not benefit gets a p-value near 1, never a flag. Every function
is pure: inputs are arrays of statistics, outputs plain numbers; randomness comes only from the
``numpy.random.Generator`` passed in, consumed in a fixed order.

How p-values are computed, and reported:

* **Monte Carlo permutation tests** report ``(k + 1) / (N + 1)`` for ``k`` of ``N`` draws at least
  as extreme. When no draw was as extreme the value is an *upper bound* (``p ≤ 1/(N + 1)``),
  and :class:`MonteCarlo` says so; it is never extrapolated into the tail.
* **Exact tests** come from SciPy where it has them: ``scipy.stats.fisher_exact`` (winners,
  hypergeometric), ``scipy.stats.binomtest`` (override concentration), ``scipy.stats.false_discovery_control``
  (Benjamini–Hochberg). The Poisson-binomial tail of the rotation leads is computed here
  (:func:`binomial_sum_upper_tail`): by FFT of the exponentially tilted distribution, which keeps
  its full relative precision far into the tail, at a cost near linear in the trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy import special, stats

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

#: Array elements one Monte Carlo chunk may hold (keeps memory near 100 MB).
CHUNK_ELEMENTS = 4_000_000
#: Default work (draws × rows re-dealt) one permutation test may spend; beyond it fewer draws are
#: made and the evidence says how many.
DEFAULT_WORK_BUDGET = 60_000_000
#: Half-width of the window the tilted Poisson-binomial mass is computed on: standard deviations
#: and a margin in trials.
TILT_WINDOW_SDS = 20
TILT_WINDOW_MARGIN = 64
#: Complex elements one block of the Poisson-binomial characteristic function may hold.
TILT_BLOCK_ELEMENTS = 1 << 20
#: How far above the expected count of keys the cut-off of a random subset's keys lies, in
#: standard deviations of that count.
KEY_MARGIN_SDS = 10
#: Cost of one shuffled element of the order-level permutation test, in budget units.
PERMUTATION_COST = 4


@dataclass(frozen=True, slots=True)
class MonteCarlo:
    """A Monte Carlo p-value: ``hits`` of ``draws`` re-allocations at least as extreme."""

    draws: int
    hits: int

    @property
    def p(self) -> float:
        """``(hits + 1) / (draws + 1)``: counts the observed allocation as one of the draws."""
        return (self.hits + 1) / (self.draws + 1)

    @property
    def is_bound(self) -> bool:
        """True when no draw was as extreme: ``p`` is then only an upper bound."""
        return self.hits == 0

    def to_json(self) -> dict[str, object]:
        return {"draws": self.draws, "as_extreme": self.hits, "p": self.p,
                "p_is_upper_bound": self.is_bound}


def benjamini_hochberg(p_values: F64) -> F64:
    """BH-adjusted p-values (q-values) via ``scipy.stats.false_discovery_control``.

    Contract: same order as the input; each q >= its p; q <= 1; flag where q <= alpha to control
    the false discovery rate.
    """
    if p_values.shape[0] == 0:
        return p_values.astype(np.float64).copy()
    q: F64 = np.asarray(stats.false_discovery_control(p_values, method="bh"), dtype=np.float64)
    return np.minimum(np.maximum(q, p_values), 1.0)


def binomial_sum_upper_tail(k: int, chances: F64, counts: I64) -> float:
    """Exact P(X >= k) for X = sum over d of Binomial(``counts[d]``, ``chances[d]``).

    This is the Poisson-binomial distribution with its chances grouped by value. Its mass
    function is computed by FFT from the characteristic function of the distribution tilted
    exponentially (P_t(x) = P(x) e^(t x) / M(t), M the moment generating function) so that its
    mean is ``k``: near ``k`` the tilted mass is large, so the FFT's rounding (absolute, about
    1e-16) costs no relative precision, however far in the tail ``k`` lies. Then
    P(X >= k) = M(t) e^(-t k) × sum over x >= k of P_t(x) e^(-t (x - k)), taken in log space.
    The tilted mass is computed on a window of ``TILT_WINDOW_SDS`` standard deviations (plus
    ``TILT_WINDOW_MARGIN``) either side of its mean; by Bernstein's inequality less than
    1e-20 of it lies outside. The cost is one pass over the window's frequencies per distinct
    chance and one inverse FFT, not the square of the number of trials.
    """
    keep = (counts > 0) & (chances > 0.0)
    chances, counts = np.minimum(chances[keep], 1.0), counts[keep]
    sure = chances >= 1.0
    k -= int(counts[sure].sum())
    chances, weights = chances[~sure], counts[~sure].astype(np.float64)
    n = int(weights.sum())
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if k == n:
        return float(np.exp(weights @ np.log(chances)))
    log_odds = np.log(chances) - np.log1p(-chances)
    tilt = _tilt(k, log_odds, weights)
    tilted = special.expit(log_odds + tilt)
    log_mgf = float(weights @ (np.log1p(-chances) + np.logaddexp(0.0, log_odds + tilt)))
    mean = float(weights @ tilted)
    sd = float(np.sqrt(weights @ (tilted * (1.0 - tilted))))
    length = min(n + 1, sp_fft.next_fast_len(
        2 * int(TILT_WINDOW_SDS * sd + TILT_WINDOW_MARGIN) + 2, real=True))
    start = min(max(0, round(mean) - length // 2), n + 1 - length)
    omega_minus_one = np.expm1(-2j * np.pi * np.arange(length // 2 + 1) / length)
    log_phi = np.zeros(omega_minus_one.shape[0], dtype=np.complex128)
    step = max(1, TILT_BLOCK_ELEMENTS // omega_minus_one.shape[0])
    for first in range(0, tilted.shape[0], step):
        block = tilted[first:first + step, None]
        log_phi += weights[first:first + step] @ np.log1p(block * omega_minus_one[None, :])
    wrapped = sp_fft.irfft(np.exp(log_phi), length)
    x = start + np.arange(length)
    mass = np.maximum(wrapped[x % length], 0.0)
    upper = x >= k
    tail = float(mass[upper] @ np.exp(-tilt * (x[upper] - k)))
    if tail <= 0.0:
        return 0.0
    return float(min(1.0, np.exp(log_mgf - tilt * k + np.log(tail))))


def _tilt(k: int, log_odds: F64, weights: F64) -> float:
    """The tilt t >= 0 that moves the mean of the grouped Poisson-binomial to about ``k``."""

    def excess(t: float) -> tuple[float, float]:
        tilted = special.expit(log_odds + t)
        return float(weights @ tilted) - k, float(weights @ (tilted * (1.0 - tilted)))

    if excess(0.0)[0] >= 0.0:
        return 0.0
    low, high = 0.0, 1.0
    while excess(high)[0] < 0.0:
        low, high = high, 2.0 * high
    t = 0.5 * (low + high)
    for _ in range(200):
        value, slope = excess(t)
        if abs(value) <= 0.25 or high - low <= 1e-12 * high:
            break
        if value < 0.0:
            low = t
        else:
            high = t
        step = t - value / slope if slope > 0.0 else low
        t = step if low < step < high else 0.5 * (low + high)
    return t


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """Exact one-sided binomial P(X >= k), X ~ Binomial(n, p) (``scipy.stats.binomtest``)."""
    if k <= 0 or n == 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    return float(stats.binomtest(k, n, min(p, 1.0), alternative="greater").pvalue)


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact test on the 2×2 table [[a, b], [c, d]]: is a/(a+b) > c/(c+d)?

    Exact under re-allocation of the rows between the two groups (hypergeometric)."""
    if (a + b) == 0 or (c + d) == 0:
        return 1.0
    table = np.array([[a, b], [c, d]], dtype=np.int64)
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


@dataclass(frozen=True, slots=True)
class WithinOrder:
    """Within-order re-allocation test of one or more labelled groups of rows.

    ``observed[l]`` is the statistic of label ``l`` (the sum of its rows' values); ``mean`` and
    ``sd`` are the exact mean and standard deviation of that sum over all within-order
    re-allocations; ``monte_carlo[l]`` counts the draws at least as large as observed.
    ``orders`` is the number of orders whose re-allocation can change the statistic.
    """

    observed: F64
    mean: F64
    sd: F64
    hits: I64
    draws: int
    orders: int

    def result(self, label: int) -> MonteCarlo:
        return MonteCarlo(self.draws, int(self.hits[label]))


def _size_groups(order: I64) -> list[tuple[int, I64]]:
    """Rows (positions) of each order, grouped by order size: ``(n, matrix G × n of rows)``."""
    sorter = np.argsort(order, kind="stable")
    sorted_orders = order[sorter]
    starts = np.flatnonzero(np.r_[True, sorted_orders[1:] != sorted_orders[:-1]])
    sizes = np.diff(np.r_[starts, sorted_orders.size])
    groups = []
    for n in np.unique(sizes):
        first = starts[sizes == n]
        rows = sorter[first[:, None] + np.arange(n)[None, :]]
        groups.append((int(n), rows.astype(np.int64)))
    return groups


def within_order_test(
    values: F64, order: I64, labels: I64, n_labels: int, draws: int,
    rng: np.random.Generator, work_budget: int = DEFAULT_WORK_BUDGET,
) -> WithinOrder:
    """Re-deal ``values`` at random among the rows of the same order; compare labelled sums.

    ``values[i]`` is row ``i``'s contribution to the statistic (for the return test: its
    departure from the pro-rata share times the order's signed, centred first-day move);
    ``labels[i]`` is the group (0 .. n_labels-1) row ``i`` belongs to, -1 for none. The null
    hypothesis: within an order, which account received which value is unrelated to anything
    else, so every permutation of the order's values among its rows is equally likely. Orders
    whose values are all equal, or whose rows all carry the same label, cannot change any
    statistic and are left out of the draws. ``draws`` is reduced so that ``draws × rows`` stays
    within ``work_budget``; ``WithinOrder.draws`` is the number made. With several labels each
    draw shuffles every order's values; with one, it draws which of them the labelled rows
    receive (:func:`_labelled_sums`), the same distribution at a cost of the labelled rows.
    """
    observed = np.bincount(labels[labels >= 0], weights=values[labels >= 0],
                           minlength=n_labels).astype(np.float64)
    groups = _size_groups(order)
    mean = np.zeros(n_labels)
    variance = np.zeros(n_labels)
    live: list[tuple[F64, I64]] = []
    orders = 0
    for n, rows in groups:
        vals, labs = values[rows], labels[rows]
        centred = vals - vals.mean(axis=1, keepdims=True)
        spread = (centred * centred).sum(axis=1)
        varies = (spread > 1e-18 * np.maximum(1.0, (vals * vals).sum(axis=1))) & (n > 1)
        for lab in range(n_labels):
            m = (labs == lab).sum(axis=1).astype(np.float64)
            mean[lab] += float((m * vals.mean(axis=1)).sum())
            if n > 1:
                variance[lab] += float((m * (n - m) / (n * (n - 1)) * spread).sum())
        keep = varies & ~np.all(labs == labs[:, :1], axis=1)
        if keep.any():
            live.append((vals[keep], labs[keep]))
            orders += int(keep.sum())
    live_rows = sum(v.size for v, _ in live)
    made = min(draws, work_budget // max(live_rows, 1)) if live_rows else 0
    totals = np.zeros((made, n_labels))
    for vals, labs in live:
        g, n = vals.shape
        flat_labels = labs.ravel()
        wanted = flat_labels >= 0
        chunk = max(1, CHUNK_ELEMENTS // vals.size)
        done = 0
        while done < made:
            size = min(chunk, made - done)
            if n_labels == 1:
                totals[done:done + size, 0] += _labelled_sums(vals, labs == 0, size, rng)
                done += size
                continue
            permuted = rng.permuted(np.broadcast_to(vals, (size, g, n)), axis=2)
            flat = permuted.reshape(size, g * n)[:, wanted]
            index = (np.arange(size)[:, None] * n_labels + flat_labels[wanted][None, :]).ravel()
            totals[done:done + size] += np.bincount(
                index, weights=flat.ravel(), minlength=size * n_labels
            ).reshape(size, n_labels)
            done += size
    # Orders left out of the draws add the same amount to every draw: their (fixed) label sums.
    fixed = observed - _live_observed(live, n_labels)
    tolerance = 1e-9 * np.maximum(1.0, np.abs(observed))
    hits = ((totals + fixed[None, :]) >= (observed - tolerance)[None, :]).sum(axis=0)
    return WithinOrder(observed, mean, np.sqrt(np.maximum(variance, 0.0)),
                       hits.astype(np.int64), made, orders)


def _labelled_sums(vals: F64, labelled: Bool, draws: int, rng: np.random.Generator) -> F64:
    """``draws`` re-deals of ``g`` orders of ``n`` rows (``vals``, g × n): per draw, the sum of the
    values the ``labelled`` rows receive, over all the orders.

    A uniformly random permutation of an order's values gives its ``m`` labelled rows a
    uniformly random ``m``-subset of them, and nothing else of the permutation enters the sum.
    Floyd's algorithm draws that subset with ``m`` random integers (for each ``j`` from
    ``n - m`` to ``n - 1``: a uniform ``t`` in ``0..j``, taken unless already chosen, else
    ``j``); when ``m > n/2`` it draws the ``n - m`` values the other rows receive and subtracts
    them from the order's total. Every order and every draw is independent.
    """
    g, n = vals.shape
    m = labelled.sum(axis=1)
    complement = 2 * m > n
    size = np.where(complement, n - m, m)
    signed = np.where(complement[:, None], -vals, vals)
    out = np.full(draws, float(vals[complement].sum()))
    chosen = np.zeros(draws * g * n, dtype=np.bool_)
    offset = np.arange(draws * g, dtype=np.int64).reshape(draws, g) * n
    for step in range(int(size.max())):
        orders = np.flatnonzero(size > step)
        last = n - size[orders] + step
        pick = rng.integers(0, last + 1, size=(draws, orders.shape[0]))
        pick = np.where(chosen[offset[:, orders] + pick], last, pick)
        chosen[offset[:, orders] + pick] = True
        out += signed[orders, pick].sum(axis=1)
    return out


def _live_observed(live: list[tuple[F64, I64]], n_labels: int) -> F64:
    total = np.zeros(n_labels)
    for vals, labs in live:
        wanted = labs >= 0
        total += np.bincount(labs[wanted], weights=vals[wanted], minlength=n_labels)
    return total


def within_order_paths(
    values: F64, order: I64, favoured: Bool, column: I64, columns: int, draws: int,
    rng: np.random.Generator,
) -> F64:
    """``draws`` re-allocated favoured sums per column (draws × columns).

    The same re-allocation as :func:`within_order_test` for one group, summed per ``column``
    (constant within an order, e.g. the trade date's index) so that a chart can draw the chance
    band of the cumulative statistic over time.
    """
    out = np.zeros((draws, columns))
    for n, rows in _size_groups(order):
        vals = values[rows]
        fav = favoured[rows]
        cols = column[rows[:, 0]]
        g = vals.shape[0]
        chunk = max(1, CHUNK_ELEMENTS // vals.size)
        done = 0
        while done < draws:
            size = min(chunk, draws - done)
            if n == 1:
                sums = np.broadcast_to((vals * fav).sum(axis=1), (size, g))
            else:
                permuted = rng.permuted(np.broadcast_to(vals, (size, g, n)), axis=2)
                sums = (permuted * fav[None]).sum(axis=2)
            index = (np.arange(size)[:, None] * columns + cols[None, :]).ravel()
            out[done:done + size] += np.bincount(
                index, weights=np.ascontiguousarray(sums).ravel(), minlength=size * columns
            ).reshape(size, columns)
            done += size
    return out


def permutation_product_test(
    weights: F64, outcomes: F64, draws: int, rng: np.random.Generator,
    work_budget: int = DEFAULT_WORK_BUDGET,
) -> tuple[float, MonteCarlo]:
    """One-sided test that ``sum(weights * outcomes)`` is larger than under shuffled outcomes.

    Used to ask whether deviations from intent line up with how orders did by the close. Draws are
    capped so that ``draws × n × PERMUTATION_COST`` stays within ``work_budget``; the draws made
    are in the result.
    """
    n = weights.shape[0]
    canonical = np.lexsort((outcomes, weights))
    weights, outcomes = weights[canonical], outcomes[canonical]
    statistic = float(weights @ outcomes)
    if n < 2:
        return statistic, MonteCarlo(0, 0)
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
    return statistic, MonteCarlo(effective, hits)


@dataclass(frozen=True, slots=True)
class PoolResult:
    """Which allocations a group received: its mean return and winners against the rest's."""

    n_favoured: int
    n_rest: int
    mean_favoured: float
    mean_rest: float
    wins_favoured: int
    wins_rest: int
    monte_carlo: MonteCarlo
    p_fisher_wins: float

    @property
    def win_share_favoured(self) -> float:
        return self.wins_favoured / self.n_favoured

    @property
    def win_share_rest(self) -> float:
        return self.wins_rest / self.n_rest

    @property
    def p_value(self) -> float:
        """Two statistics (mean return by Monte Carlo, winners by Fisher), Bonferroni-combined."""
        return min(1.0, 2.0 * min(self.monte_carlo.p, self.p_fisher_wins))


def _subset_sums(values: F64, m: int, draws: int, rng: np.random.Generator) -> F64:
    """Sums of ``values`` over ``draws`` random subsets of size ``m`` (without replacement).

    Each draw gives every row a uniform key and takes the ``m`` rows with the smallest keys
    (``0 < m < n``). They are sought among the rows whose key falls below a cut-off that on
    average ``KEY_MARGIN_SDS`` standard deviations more than ``m`` rows pass, and among all rows
    in a draw where fewer pass: the same subset as partitioning all the keys, at a fraction of
    the cost when ``m`` is small against ``n``.
    """
    n = values.shape[0]
    out = np.empty(draws, dtype=np.float64)
    cut = min(1.0, (m + KEY_MARGIN_SDS * np.sqrt(m) + 16) / n)
    chunk = max(1, min(draws, CHUNK_ELEMENTS // max(n, 1)))
    done = 0
    while done < draws:
        size = min(chunk, draws - done)
        keys = rng.random((size, n))
        row, column = np.nonzero(keys < cut)
        found = np.bincount(row, minlength=size)
        width = max(int(found.max()), m)
        slot = np.arange(row.shape[0]) - (np.cumsum(found) - found)[row]
        candidates = np.full((size, width), np.inf)
        candidates[row, slot] = keys[row, column]
        columns = np.zeros((size, width), dtype=np.int64)
        columns[row, slot] = column
        picks = np.take_along_axis(columns, np.argpartition(candidates, m - 1, axis=1)[:, :m], 1)
        sums = values[picks].sum(axis=1)
        for short in np.flatnonzero(found < m):
            sums[short] = values[np.argpartition(keys[short], m - 1)[:m]].sum()
        out[done:done + size] = sums
        done += size
    return out


def pool_test(
    returns: F64, favoured: Bool, draws: int, rng: np.random.Generator,
    work_budget: int = DEFAULT_WORK_BUDGET,
) -> PoolResult | None:
    """Did the favoured group receive the better allocations of the pool it traded in?

    The null hypothesis: which of the pool's allocations went to the favoured group is unrelated
    to how they did, so every re-labelling keeping the group sizes is equally likely. Mean return
    by Monte Carlo re-labelling (draws capped by ``work_budget``), winners by the exact Fisher
    test. Assumes allocations are exchangeable units; when favoured accounts always trade
    together this overstates the evidence, which is why the within-order test is the main one.
    Returns ``None`` when either group is empty.
    """
    n = returns.shape[0]
    m = int(favoured.sum())
    if m == 0 or m == n:
        return None
    # Sorted values: the draws do not depend on the order of the rows.
    fav_sum = float(np.sort(returns[favoured]).sum())
    wins = returns > 0
    fav_wins = int(wins[favoured].sum())
    returns = np.sort(returns)
    total = float(returns.sum())
    rest_wins = int(wins.sum()) - fav_wins
    small = min(m, n - m)
    made = min(draws, work_budget // n)
    sums = _subset_sums(returns, small, made, rng) if made else np.zeros(0)
    if small != m:
        sums = total - sums
    tolerance = 1e-9 * max(1.0, float(np.abs(returns).sum()) / n) * m
    hits = int((sums >= fav_sum - tolerance).sum())
    return PoolResult(
        n_favoured=m, n_rest=n - m, mean_favoured=fav_sum / m,
        mean_rest=(total - fav_sum) / (n - m), wins_favoured=fav_wins, wins_rest=rest_wins,
        monte_carlo=MonteCarlo(made, hits),
        p_fisher_wins=fisher_greater(fav_wins, m - fav_wins, rest_wins, n - m - rest_wins),
    )
