"""Apportionment: turning exact pro-rata shares into whole lots, exactly and by a named rule.

Everything here works on integers: quantities in the trade's smallest unit (a share, or 0.001 of a
bond's face value...) and integer weights. No floats, no Decimal contexts.

Two methods, with the guarantees ``docs/rounding.md`` states and ``tests/test_rounding.py`` proves:

``largest_remainder`` (Hamilton)
    Exact shares are capped first ("water-filling": an account whose pro-rata share exceeds its cap
    gets its cap, and the rest is re-spread over the others in proportion). Each account then gets
    its exact share rounded down to a lot; the lots left over go one each to the accounts with the
    largest remainders; a final odd quantity smaller than a lot goes to one account still below its
    rounded-up share, chosen by the policy's ``remainder`` rule. Guarantees: conservation, caps,
    and the quota property — every allocation is its exact share rounded down or up to a lot.
    Not fill-monotone: a larger fill can lower an account's allocation (the Alabama paradox).

``quota`` (Balinski–Young quota method)
    Lots are handed out one at a time; lot ``h+1`` goes to the account with the highest priority
    ``weight / (lots + 1)`` among those whose lots would stay within their upper quota
    ``ceil((h+1) * weight / total weight)`` and their cap; an odd quantity smaller than a lot goes
    to the account that would receive the next lot. Guarantees: conservation, caps, fill-monotone
    (allocating a larger fill only ever adds to each account), and the quota property whenever the
    fill is a whole number of lots (with an odd quantity, within one lot plus that odd quantity).

Ties are never broken by input order: each account has a ``rank`` (0 = first) computed from the
policy's ``tie_break`` rule, which always ends on the account id.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Callable, Sequence
from functools import cached_property
from itertools import repeat
from typing import Any
from fractions import Fraction
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


# Integers below this bound multiply without overflow in numpy's int64.
_INT64_SAFE = 2**62
NO_CAP = 2**63 - 1
"""The cap of an uncapped account in int64 arrays (larger than any quantity the arrays can hold)."""
# Below this many accounts the pure-Python path is faster than setting up arrays.
_NUMPY_FROM = 512


class Step(msgspec.Struct, frozen=True):
    """How one account's number came about, for ``--explain``."""

    exact: Fraction  # exact share after capping, in units
    capped: bool  # the cap bound during water-filling
    base_lots: int  # exact share rounded down to lots
    extra_lot: bool  # received one more lot for its remainder
    odd: int  # units of the final odd (less than a lot) quantity received
    order: int | None  # position in the remainder order (0 = first), if it was a candidate


class Apportionment:
    """The allocations, and how each came about — built only when asked (``--explain``, tests),
    because a block of 100,000 accounts should not pay for 100,000 explanations it does not print."""

    def __init__(self, allocations: list[int] | Callable[[], list[int]], build_steps: Callable[[], list[Step]]) -> None:
        if callable(allocations):
            self._build_allocations = allocations
        else:
            self.__dict__["allocations"] = allocations
        self._build_steps = build_steps

    @cached_property
    def allocations(self) -> list[int]:
        """Each account's allocation, in the order of the weights given."""
        return self._build_allocations()

    @cached_property
    def steps(self) -> list[Step]:
        return self._build_steps()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Apportionment):
            return NotImplemented
        return self.allocations == other.allocations and self.steps == other.steps

    def __repr__(self) -> str:
        return f"Apportionment({self.allocations!r})"


def water_fill(total: int, weights: Sequence[int], caps: Sequence[int | None]) -> tuple[set[int], int, int]:
    """Cap exact shares: return (capped indices, quantity left for the rest, weight of the rest).

    An account is capped when ``cap < share``; capping it raises everyone else's share, so accounts
    are visited in increasing ``cap / weight`` until none binds. The result does not depend on the
    order of the inputs.
    """
    rest_total, rest_weight = total, sum(weights)
    if rest_weight == 0:
        return set(), rest_total, 0
    if total <= rest_weight and isinstance(caps, list) and isinstance(weights, list) and caps == weights:
        return set(), rest_total, rest_weight  # each cap its weight (by intended, capped at it): none binds
    binding = [
        i for i, cap in enumerate(caps)
        if cap is not None and weights[i] > 0 and cap * rest_weight < total * weights[i]
    ]
    if not binding:
        return set(), rest_total, rest_weight
    order = sorted(
        (i for i, cap in enumerate(caps) if cap is not None and weights[i] > 0),
        key=lambda i: (Fraction(caps[i] or 0, weights[i]), i),
    )
    capped: set[int] = set()
    for i in order:
        cap = caps[i]
        assert cap is not None
        if rest_weight > 0 and cap * rest_weight < rest_total * weights[i]:
            capped.add(i)
            rest_total -= cap
            rest_weight -= weights[i]
        else:
            break
    return capped, rest_total, rest_weight


def largest_remainder(
    total: int,
    weights: Sequence[int],
    caps: Sequence[int | None],
    lot: int,
    rank: Sequence[int],
    odd_key: Sequence[int] | None = None,
    advantage: Sequence[Fraction] | None = None,
) -> Apportionment:
    """Hamilton's method with caps and lots. See the module docstring for the guarantees.

    ``odd_key`` orders the recipients of the final odd quantity (smaller first) when the policy's
    remainder rule is not the largest remainder; ``None`` keeps the largest-remainder order.
    ``advantage``: each account's cumulative rounding advantage in units before this order, for
    fairness over time (:func:`fair_order`); it then orders the spare lots and the odd quantity.
    """
    n = len(weights)
    if n >= _NUMPY_FROM and max(weights) < _INT64_SAFE and all(c is None or c < _INT64_SAFE for c in caps):
        import numpy as np  # only blocks of hundreds of accounts or more pay for importing numpy

        arrays = largest_remainder_array(
            total,
            np.asarray(weights, dtype=np.int64),
            np.asarray([NO_CAP if c is None else c for c in caps], dtype=np.int64),
            lot,
            np.asarray(rank, dtype=np.int64),
            None if odd_key is None else np.asarray(odd_key, dtype=np.int64),
            advantage,
        )
        if arrays is not None:
            return arrays[1]
    capped, rest_total, rest_weight = water_fill(total, weights, caps)
    if rest_weight == 0 and rest_total > 0:
        raise ValueError("the caps of the accounts with a positive weight cannot hold the filled quantity")
    scale = max(rest_weight, 1)
    denominator = scale * lot
    nums: list[int]
    if capped:
        nums = [(caps[i] or 0) * scale if i in capped else rest_total * weights[i] for i in range(n)]
    else:
        nums = list(map(operator.mul, weights, repeat(rest_total)))
    # the arithmetic mapped over the lists at C speed (a comprehension runs it in Python per account)
    base: list[int] = list(map(operator.floordiv, nums, repeat(denominator)))
    rem: list[int] = list(map(operator.mod, nums, repeat(denominator)))
    alloc: list[int] = list(map(operator.mul, base, repeat(lot)))
    left = total - sum(alloc)

    def upper(i: int) -> int:
        """The most account ``i`` may get: its exact share rounded up to a lot, never above its cap."""
        ceiling = (base[i] + (rem[i] > 0)) * lot
        cap = caps[i]
        return ceiling if cap is None else min(ceiling, cap)

    if advantage is None:  # largest remainder first, then rank, then index (the order of a stable sort)
        candidates = [i for _, _, i in sorted([(-r, rank[i], i) for i, r in enumerate(rem) if r > 0])]
    else:
        candidates = fair_order([i for i in range(n) if rem[i] > 0], advantage, alloc, nums, scale, rank)
    extra = [False] * n
    for i in candidates:
        if left < lot:
            break
        cap = caps[i]  # a candidate's share rounded up is its lots plus one: upper(i) == alloc[i] + lot
        if cap is None or alloc[i] + lot <= cap:
            alloc[i] += lot
            extra[i] = True
            left -= lot
    odd = [0] * n
    if left:
        if advantage is not None:
            order = fair_order(candidates, advantage, alloc, nums, scale, rank)
        else:
            order = candidates if odd_key is None else sorted(candidates, key=lambda i: (odd_key[i], rank[i]))
        # an account given a spare lot is at its share rounded up: no room left for the odd quantity
        _hand_out(left, [i for i in order if not extra[i]], lambda i: upper(i) - alloc[i], alloc, odd)

    def steps() -> list[Step]:
        position = {i: k for k, i in enumerate(candidates)}
        return [Step(Fraction(nums[i], scale), i in capped, base[i], extra[i], odd[i], position.get(i))
                for i in range(n)]

    return Apportionment(alloc, steps)


def fair_order(candidates: Sequence[int], advantage: Sequence[Fraction], alloc: Sequence[int],
               nums: Sequence[int], scale: int, rank: Sequence[int]) -> list[int]:
    """``candidates`` by cumulative rounding advantage, lowest first: the one definition of the
    order fairness over time hands out spare lots and the odd quantity in (``docs/rounding.md``).

    An account's key is its advantage before this order plus what this order has given it so far
    minus its exact share (``nums[i] / scale`` units) — the advantage it would carry if it got
    nothing more. Equal keys go by the tie-break ``rank`` (which ends on the account id).

    The keys are compared as integers: each multiplied by ``scale`` and by the common denominator
    of the advantages, which keeps their order exactly and sorts a large block far faster than
    fractions do."""
    common = math.lcm(*(advantage[i].denominator for i in candidates)) if candidates else 1
    keys = {i: (advantage[i].numerator * (common // advantage[i].denominator) * scale
                + (alloc[i] * scale - nums[i]) * common, rank[i]) for i in candidates}
    return sorted(candidates, key=keys.__getitem__)


def _hand_out(left: int, order: list[int], room: Callable[[int], int], alloc: Any, odd: Any) -> None:
    """Give the ``left`` odd units to the accounts in ``order``, each up to its ``room``.

    ``alloc`` and ``odd`` are indexable (lists or int64 arrays) and updated in place. Raises
    ``ValueError`` if the rooms cannot hold everything: conservation is never given up silently.
    """
    for i in order:
        if not left:
            break
        take = min(left, room(i))
        if take > 0:
            alloc[i] += take
            odd[i] = take
            left -= take
    if left:
        raise ValueError("caps leave no room for the whole filled quantity")


def largest_remainder_array(
    total: int,
    weights: NDArray[np.int64],
    caps: NDArray[np.int64],
    lot: int,
    rank: NDArray[np.int64],
    odd_key: NDArray[np.int64] | None = None,
    advantage: Sequence[Fraction] | None = None,
) -> tuple[NDArray[np.int64], Apportionment] | None:
    """:func:`largest_remainder` on int64 arrays (``caps``: :data:`NO_CAP` for none), for large blocks.

    Identical results (property-tested against the list version). Returns the allocations as an
    array as well, and ``None`` when a product could leave int64's exact range: the caller then
    uses the list version, which has no such limit.
    """
    import numpy as np

    n = len(weights)
    top_weight = int(weights.max()) if n else 0
    # int64's own sum is exact while n times the largest weight stays in range
    weight_sum = int(weights.sum()) if top_weight * n < _INT64_SAFE else int(weights.sum(dtype=object))
    # caps that take part in arithmetic (NO_CAP would overflow); an account of weight 0 is never
    # capped below, as its share (0) is never above its cap
    has_cap = caps != NO_CAP
    bounded = np.where(has_cap, caps, 0)
    top_cap = int(bounded.max()) if n else 0
    if (weight_sum >= _INT64_SAFE or top_cap * max(weight_sum, 1) >= _INT64_SAFE
            or total * max(top_weight, 1) >= _INT64_SAFE or max(weight_sum, 1) * lot >= _INT64_SAFE):
        return None
    # water-filling: cap every account whose share exceeds its cap, re-spread, until none does;
    # capping only raises the others' shares, so the capped set grows to the same fixed point
    # as water_fill's walk in increasing cap/weight
    capped = np.zeros(n, dtype=bool)
    rest_total, rest_weight = total, weight_sum
    shares = weights * rest_total  # each account's share of rest_total, times rest_weight
    new = has_cap & (bounded * rest_weight < shares)
    while rest_weight > 0 and new.any():
        capped |= new
        rest_total -= int(bounded[new].sum())
        rest_weight -= int(weights[new].sum())
        shares = weights * rest_total
        new = has_cap & ~capped & (bounded * rest_weight < shares)
    if rest_weight == 0 and rest_total > 0:
        raise ValueError("the caps of the accounts with a positive weight cannot hold the filled quantity")
    scale = max(rest_weight, 1)
    denominator = scale * lot
    nums = np.where(capped, bounded * scale, shares) if capped.any() else shares
    base, rem = np.divmod(nums, denominator)
    alloc = base * lot
    positive = rem > 0
    upper = np.minimum((base + positive) * lot, caps)  # the exact share rounded up to a lot, within the cap
    left = total - int(alloc.sum())
    cand = np.flatnonzero(positive)  # the candidates: a remainder to round up
    extra = np.zeros(n, dtype=bool)
    odd = np.zeros(n, dtype=np.int64)
    fair: NDArray[np.int64] | None = None  # the candidates in fairness order
    if advantage is None:
        # the spare lots go to the first candidates by (largest remainder, rank) that have room
        # for one: only which they are matters, so they are selected, not sorted
        can_take = np.flatnonzero(positive & (upper - alloc >= lot))
        every = len(can_take) == n  # commonly: no gathers then
        chosen = can_take[_first(-(rem if every else rem[can_take]), rank if every else rank[can_take], left // lot,
                                 ordered=False)]
    else:
        fair = np.asarray(fair_order(cand.tolist(), advantage, alloc.tolist(), nums.tolist(), scale, rank.tolist()),
                          dtype=np.int64)
        chosen = fair[alloc[fair] + lot <= upper[fair]][:left // lot]
    alloc[chosen] += lot
    extra[chosen] = True
    left -= lot * len(chosen)
    if left:
        # only accounts with room take part, and each takes at least one unit: at most ``left``
        if advantage is not None:
            order = np.asarray(fair_order(cand.tolist(), advantage, alloc.tolist(), nums.tolist(), scale,
                                          rank.tolist()), dtype=np.int64)
            with_room = order[upper[order] > alloc[order]][:left]
        else:
            roomy = np.flatnonzero(positive & (upper > alloc))
            key = -rem[roomy] if odd_key is None else odd_key[roomy]
            with_room = roomy[_first(key, rank[roomy], left, ordered=True)]
        _hand_out(left, with_room.tolist(), lambda i: int(upper[i] - alloc[i]), alloc, odd)

    def build_steps() -> list[Step]:
        ordered = cand[np.lexsort((rank[cand], -rem[cand]))] if fair is None else fair
        position = np.full(n, -1, dtype=np.int64)
        position[ordered] = np.arange(len(ordered))
        nums_list, capped_list = nums.tolist(), capped.tolist()
        base_list, odd_list, extra_list = base.tolist(), odd.tolist(), extra.tolist()
        position_list = position.tolist()
        return [
            Step(Fraction(nums_list[i], scale), capped_list[i], base_list[i], extra_list[i], odd_list[i],
                 None if position_list[i] < 0 else position_list[i])
            for i in range(n)
        ]

    return alloc, Apportionment(alloc.tolist, build_steps)  # the array serves; a list on demand


def _first(key: NDArray[np.int64], rank: NDArray[np.int64], k: int, *, ordered: bool) -> NDArray[np.int64]:
    """Where the ``k`` smallest entries by (``key``, ``rank``) are (``rank`` holds no value twice),
    in that order if ``ordered``: the ones a full sort would put first, found by a partition in
    linear time; a full sort only when ``k`` takes them all."""
    import numpy as np

    n = len(key)
    if k >= n:
        return np.lexsort((rank, key)) if ordered else np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    threshold = np.partition(key, k - 1)[k - 1]
    below = np.flatnonzero(key < threshold)
    tied = np.flatnonzero(key == threshold)
    need = k - len(below)  # 1 <= need <= len(tied): the k-th smallest key is the threshold
    if need < len(tied):
        tied = tied[np.argpartition(rank[tied], need - 1)[:need]]
    chosen: NDArray[np.int64] = np.concatenate((below, tied))
    if ordered:
        chosen = chosen[np.lexsort((rank[chosen], key[chosen]))]
    return chosen


def quota_method(
    total: int,
    weights: Sequence[int],
    caps: Sequence[int | None],
    lot: int,
    rank: Sequence[int],
) -> Apportionment:
    """Balinski–Young's quota method with caps and lots. See the module docstring for the guarantees."""
    n = len(weights)
    total_weight = sum(weights)
    if total_weight == 0:
        if total:
            raise ValueError("no account with a positive weight can take the filled quantity")
        return Apportionment([0] * n, lambda: [Step(Fraction(0), False, 0, False, 0, None) for _ in range(n)])
    lots = [0] * n
    cap_lots = [None if c is None else c // lot for c in caps]
    whole = total // lot
    # Heap of (-priority, rank, index); priority = weight / (lots + 1).
    heap = [(-Fraction(weights[i], 1), rank[i], i) for i in range(n) if weights[i] > 0]
    heapq.heapify(heap)
    waiting: list[tuple[int, int, int]] = []  # (house size at which eligible, rank, index)
    for house in range(1, whole + 1):
        chosen = _take_lot(heap, waiting, lots, cap_lots, weights, total_weight, house)
        if chosen is None:
            break
        lots[chosen] += 1
        if cap_lots[chosen] is None or lots[chosen] < (cap_lots[chosen] or 0):
            heapq.heappush(heap, (-Fraction(weights[chosen], lots[chosen] + 1), rank[chosen], chosen))
    alloc = [k * lot for k in lots]
    left = total - sum(alloc)
    odd = [0] * n
    if left:
        # The odd quantity goes to the account that would receive the next lot, so that a larger
        # fill only ever adds to each account; if its cap stops it, to the next by priority.
        following = _take_lot(heap, waiting, lots, cap_lots, weights, total_weight, whole + 1)
        line = sorted(
            (i for i in range(n) if weights[i] > 0 and i != following),
            key=lambda i: (-Fraction(weights[i], lots[i] + 1), rank[i]),
        )
        if following is not None:
            line.insert(0, following)
        _hand_out(left, line, lambda i: left if caps[i] is None else (caps[i] or 0) - alloc[i], alloc, odd)
    return Apportionment(alloc, lambda: [
        Step(Fraction(total * weights[i], total_weight), False, lots[i], False, odd[i], None)
        for i in range(n)
    ])


def _take_lot(
    heap: list[tuple[Fraction, int, int]],
    waiting: list[tuple[int, int, int]],
    lots: list[int],
    cap_lots: list[int | None],
    weights: Sequence[int],
    total_weight: int,
    house: int,
) -> int | None:
    """Pop the highest-priority account within its upper quota for ``house`` lots.

    Accounts above their upper quota wait until the house size at which they are eligible again.
    """
    while waiting and waiting[0][0] <= house:
        _, r, i = heapq.heappop(waiting)
        heapq.heappush(heap, (-Fraction(weights[i], lots[i] + 1), r, i))
    deferred: list[tuple[Fraction, int, int]] = []
    chosen: int | None = None
    while heap:
        item = heapq.heappop(heap)
        i = item[2]
        limit = cap_lots[i]
        if limit is not None and lots[i] >= limit:
            continue  # full: it never takes another lot
        # upper quota: lots + 1 <= ceil(house * w / W)  <=>  lots * W < house * w
        if lots[i] * total_weight < house * weights[i]:
            chosen = i
            break
        eligible_at = lots[i] * total_weight // weights[i] + 1
        heapq.heappush(waiting, (eligible_at, item[1], i))
    if chosen is None and waiting:
        # Caps have blocked every account within quota: the lot goes to the best account with room.
        while waiting:
            _, r, i = heapq.heappop(waiting)
            deferred.append((-Fraction(weights[i], lots[i] + 1), r, i))
        deferred.sort()
        chosen = deferred[0][2]
        for item in deferred[1:]:
            heapq.heappush(heap, item)
    return chosen


def at_caps(allocations: list[int], lot: int) -> Apportionment:
    """The apportionment of accounts that each receive their cap in full (a priority tier the fill
    covers): nothing is rounded, each exact share is the cap itself."""
    return Apportionment(allocations, lambda: [
        Step(Fraction(units), True, units // lot, False, 0, None) for units in allocations
    ])
