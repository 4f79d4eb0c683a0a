"""Rotation schedules: who goes first this time, and where the rotation stands afterwards.

The rotation state is an explicit input and output of an allocation — never hidden in the engine —
so that a ledger can persist it, read and advance it atomically, and replay it. A state names the
rotation *group* it belongs to (for example one rotation per strategy), the *position* of the next
leader, and, for rotations that advance per day, the trade date the position applies to.

With an explicit ``sequence`` the position is an index into it; with ``order_by`` the accounts of
each order are sorted by the expression and the position counts orders (or days), taken modulo the
number of accounts. Either way each order's leader is the first participating account at or after
the position, and after the order the position moves one past that leader (per order) or stays for
the rest of the day (per day) — so over a series of orders in which the same accounts take part,
every account leads equally often, give or take one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from fairalloc.errors import Diagnostic, InputError, Location, RefusedError
from fairalloc.plan import Rotation


class RotationState(msgspec.Struct, frozen=True):
    """Where one rotation group stands: the next leader's position and, per day, the date."""

    group: str
    position: int = 0
    day: dt.date | None = None

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "position": self.position, "day": self.day.isoformat() if self.day else None}

    @classmethod
    def from_json(cls, data: Any, file: str = "<rotation>") -> RotationState:
        """Read a state written by :meth:`to_json`; raise :class:`InputError` on anything else."""
        def bad(message: str, where: str) -> InputError:
            return InputError(Diagnostic("rotation-state", message, Location(file, pointer=where),
                                         'expected {"group": "...", "position": 0, "day": "YYYY-MM-DD" or null}'))

        if not isinstance(data, dict):
            raise bad("a rotation state must be a JSON object", "")
        unknown = set(data) - {"group", "position", "day"}
        if unknown:
            raise bad(f"unknown field '{sorted(unknown)[0]}'", f"/{sorted(unknown)[0]}")
        group, position, day = data.get("group"), data.get("position", 0), data.get("day")
        if not isinstance(group, str) or not group:
            raise bad("'group' must be a non-empty string", "/group")
        if not group.isascii() and any("\ud800" <= char <= "\udfff" for char in group):
            # a lone \uXXXX surrogate escape: text no UTF-8 stream or database can carry
            raise bad("'group' has a lone UTF-16 surrogate (\\uD800-\\uDFFF), not a character", "/group")
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            raise bad("'position' must be a whole number >= 0", "/position")
        parsed: dt.date | None = None
        if day is not None:
            try:
                parsed = dt.date.fromisoformat(day) if isinstance(day, str) else None
            except ValueError:
                parsed = None
            if parsed is None:
                raise bad("'day' must be a date (YYYY-MM-DD) or null", "/day")
        return cls(group, position, parsed)


class Schedule(msgspec.Struct, frozen=True):
    """This order's rotation order of the participating accounts, and the state after it."""

    order: tuple[str, ...]
    before: RotationState
    after: RotationState


def schedule(
    rotation: Rotation,
    state: RotationState,
    participants: list[str],
    sort_keys: dict[str, Any],
    trade_date: dt.date,
    file: str | None = None,
) -> Schedule:
    """The cyclic order of ``participants`` starting at the state's position, and the next state;
    a refusal is located in the trade document ``file``."""
    start = state.position
    if rotation.advance == "per_day" and state.day is not None:
        if trade_date < state.day:
            raise RefusedError(Diagnostic(
                "rotation-out-of-order",
                f"the rotation state is for {state.day.isoformat()}, later than this order's trade date "
                f"{trade_date.isoformat()}",
                Location(file, pointer="/order/trade_date"),
                "allocate orders in trade-date order, or use the state recorded for that date",
            ))
        if trade_date > state.day:
            start += 1
    if rotation.sequence is not None:
        cycle = list(rotation.sequence)
        unknown = sorted(set(participants) - set(cycle))
        if unknown:
            raise RefusedError(Diagnostic(
                "rotation-unknown-account",
                f"account(s) {', '.join(unknown)} take part in this order but are not in the rotation sequence",
                Location(file, pointer="/statement/accounts"),
                "add them to the policy's rotation sequence (a policy change) before allocating",
            ))
        start %= len(cycle)
        taking = set(participants)
        ordered = [a for a in cycle[start:] + cycle[:start] if a in taking]
        leader_index = cycle.index(ordered[0]) if ordered else start
        next_position = (leader_index + 1) % len(cycle)
    else:
        cycle = sorted(participants, key=lambda a: (sort_keys[a], a))
        if cycle:
            offset = start % len(cycle)
            ordered = cycle[offset:] + cycle[:offset]
        else:
            ordered = []
        next_position = start + 1
    if rotation.advance == "per_day":
        after = RotationState(state.group, start, trade_date)
    else:
        after = RotationState(state.group, next_position, None)
    return Schedule(tuple(ordered), state, after)
