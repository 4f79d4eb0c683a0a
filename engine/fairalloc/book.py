"""The account book: what the allocation stages (:mod:`fairalloc.execute`) read and write.

The stages are written once, in :mod:`fairalloc.execute`, over this interface; a book holds one
trade's accounts and answers the stages' questions about them. Two books implement it:

* :class:`fairalloc.records.RecordBook` — one record per account, for every policy; the fastest
  for small blocks, and the only one for rotation, price/time and expressions without a columnar
  form;
* :class:`fairalloc.arrays.ArrayBook` — one numpy array per account field, for large pro-rata
  blocks under a policy with an array form (:mod:`fairalloc.arrayform`).

Accounts are named by their *position* in account-id order (0 = the smallest id); a selection
``S`` is a set of positions in increasing order (a list, or an int64 array), and ``U`` holds one
number of integer units per position (a list, or an int64 array). Quantities are integer units:
``scale`` units make one unit of quantity (10 ** the decimal places of the trade and lot).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction
from typing import Generic, TypeVar

import msgspec

from fairalloc.options import Backend, RoundingMethod
from fairalloc.plan import Rule
from fairalloc.rounding import Apportionment

S = TypeVar("S")
U = TypeVar("U")


class Shares(msgspec.Struct, Generic[S, U]):
    """What one run of a method gave the accounts ``members`` (``units``: by position, 0 elsewhere)."""

    units: U
    members: S
    apportionment: Apportionment | None = None
    prices: dict[int, Fraction] = msgspec.field(default_factory=dict)  # price/time: own average price
    fills: dict[int, list[tuple[str, int]]] = msgspec.field(default_factory=dict)  # price/time: fills taken
    tiers: dict[int, tuple[bool, str]] = msgspec.field(default_factory=dict)  # tier -> (filled to caps, words)
    odd_lot: tuple[int, int] | None = None  # odd_lots.recipient: (position, units) it took
    parts: list[Shares[S, U]] = msgspec.field(default_factory=list)  # priority tiers: each tier's own shares


class Ledger(msgspec.Struct, frozen=True):
    """Per-position facts the explanation shows, as plain lists (built only for ``--explain``)."""

    index: list[int]  # position in the statement
    intended: list[int]
    caps: list[int | None]
    weights: list[int]
    weight_texts: list[str | None]
    ranks: list[int]
    minimums: list[int | None] | None
    tiers: list[int | None] | None = None  # priority tiers: each eligible account's tier


class Book(ABC, Generic[S, U]):
    """One trade's accounts while the stages run; see the module docstring for ``S`` and ``U``."""

    backend: Backend
    ids: list[str]  # account ids in position order (sorted)
    scale: int
    lot: int
    filled: int

    # -- selections -------------------------------------------------------------------------
    @abstractmethod
    def everyone(self) -> S: ...

    @abstractmethod
    def nobody(self) -> S: ...

    @abstractmethod
    def size(self, accounts: S) -> int: ...

    @abstractmethod
    def without(self, accounts: S, removed: S) -> S:
        """``accounts`` less ``removed``, in order."""

    @abstractmethod
    def union(self, first: S, second: S) -> S: ...

    @abstractmethod
    def positions(self, accounts: S) -> list[int]: ...

    # -- the stages' questions ----------------------------------------------------------------
    @abstractmethod
    def rank(self, sign: int) -> None:
        """Set each account's tie-break rank: by ``sign`` x intended (0: not), then by position."""

    @abstractmethod
    def fires(self, rule: Rule, among: S, shares: Shares[S, U] | None) -> S:
        """The accounts of ``among`` for which ``rule``'s condition is ``true``; ``shares``: the
        provisional allocation the condition reads, if it runs in the rounds."""

    @abstractmethod
    def cap(self, rule: Rule, accounts: S) -> None:
        """Lower the caps of ``accounts`` to ``rule``'s quantity (rounded down to units, >= 0)."""

    @abstractmethod
    def weigh(self, eligible: S) -> None:
        """Set the pro-rata weight of every eligible account (0 for the others)."""

    @abstractmethod
    def set_minimums(self, eligible: S) -> None:
        """Compute each eligible account's minimum in units (rounded up) from the policy."""

    @abstractmethod
    def below_minimum(self, members: S, units: U) -> S:
        """The members whose allocation is above 0 but below their minimum."""

    @abstractmethod
    def can_hold(self, accounts: S) -> bool:
        """Whether ``accounts`` (those with a positive weight, or no cap) can take the fill under their caps."""

    @abstractmethod
    def apportion(self, members: S, method: RoundingMethod, odd_key: list[int] | None,
                  total: int | None = None, advantage: list[Fraction] | None = None) -> Shares[S, U]:
        """Pro-rata shares of ``total`` units (``None``: the fill) in whole lots; ``odd_key`` (by
        position) orders who takes the odd quantity (``None``: the largest remainder); ``advantage``
        (by position, in units): the cumulative rounding advantages that order the spare lots and
        the odd quantity under fairness over time. Raises ``ValueError`` when the caps cannot hold it."""

    @abstractmethod
    def tiers(self, members: S) -> list[tuple[int, S]]:
        """``pro_rata.priority``: the members grouped by tier, lowest tier first, each group in
        position order. Raises :class:`~fairalloc.errors.InputError` (``priority-invalid``) for a
        tier that is not an integer."""

    @abstractmethod
    def tier_room(self, members: S) -> int | None:
        """What the members with a positive weight can hold under their caps (``None``: one has none)."""

    @abstractmethod
    def to_caps(self, members: S) -> Shares[S, U]:
        """Every member with a positive weight at its cap (none may be missing a cap)."""

    @abstractmethod
    def combine(self, parts: list[Shares[S, U]]) -> U:
        """The units of ``parts`` (disjoint members) as one allocation."""

    @abstractmethod
    def holds(self, accounts: S, position: int) -> bool:
        """Whether ``position`` is one of ``accounts``."""

    @abstractmethod
    def give(self, shares: Shares[S, U], position: int, units: int) -> bool:
        """Add ``units`` to ``position``'s allocation if its cap leaves room for them all; whether it did."""

    @abstractmethod
    def odd_key(self, sign: int) -> list[int] | None:
        """The odd-quantity order by ``sign`` x intended, by position (``None`` for sign 0)."""

    @abstractmethod
    def nothing(self) -> Shares[S, U]:
        """The allocation of no account."""

    @abstractmethod
    def allocated(self, units: U) -> list[int]:
        """``units`` as a list, by position."""

    @abstractmethod
    def total(self, units: U) -> int: ...

    @abstractmethod
    def intended_units(self) -> list[int]:
        """Each account's intended quantity in units, by position."""

    @abstractmethod
    def room(self, accounts: S) -> int | None:
        """What ``accounts`` can hold under their caps in all (``None``: one has no cap)."""

    @abstractmethod
    def ledger(self) -> Ledger:
        """The per-account facts behind the explanation."""
