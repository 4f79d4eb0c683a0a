"""The whitelist of built-in functions: signature, static typing rule and implementation.

A call can reach nothing but the entries of :data:`FUNCTIONS`. Each entry says which kinds every
argument may have (the last entry repeats for variadic functions), how the result type follows
from the argument types, and which :mod:`.runtime` function runs it. ``date`` and ``timestamp``
are not here: they are literal syntax (a quoted ISO text) that the checker turns into constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from . import runtime
from .types import ORDERED_KINDS, Kind, Type, join

NUMERIC = frozenset({Kind.NUMBER})
TEXT = frozenset({Kind.STRING})
ANY_KIND = frozenset(Kind)


class Function(msgspec.Struct, frozen=True):
    """One built-in function. ``max_args`` None means the last parameter repeats."""

    name: str
    params: tuple[frozenset[Kind], ...]
    min_args: int
    max_args: int | None
    result: Callable[[Sequence[Type]], Type | None]
    impl: Callable[..., Any]
    signature: str

    def param(self, index: int) -> frozenset[Kind]:
        """The kinds accepted by argument ``index`` (the last parameter repeats)."""
        return self.params[min(index, len(self.params) - 1)]


def _fixed(result: Type) -> Callable[[Sequence[Type]], Type | None]:
    return lambda _args: result


def _joined(args: Sequence[Type]) -> Type | None:
    """min/max: all arguments of one kind; the result is never null (null is an error)."""
    total: Type | None = args[0]
    for arg in args[1:]:
        total = join(total, arg) if total is not None else None
    return total.non_null() if total is not None else None


def _coalesced(args: Sequence[Type]) -> Type | None:
    """coalesce: null only if every argument may be null."""
    total = _joined(args)
    if total is None:
        return None
    return total.or_null() if all(arg.nullable for arg in args) else total


def _spec(
    name: str,
    params: tuple[frozenset[Kind], ...],
    arity: tuple[int, int | None],
    result: Callable[[Sequence[Type]], Type | None],
    impl: Callable[..., Any],
    signature: str,
) -> Function:
    return Function(name, params, arity[0], arity[1], result, impl, signature)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        _spec("min", (ORDERED_KINDS,), (2, None), _joined, runtime.fn_min, "min(a, b, ...)"),
        _spec("max", (ORDERED_KINDS,), (2, None), _joined, runtime.fn_max, "max(a, b, ...)"),
        _spec("abs", (NUMERIC,), (1, 1), _fixed(Type.NUMBER), runtime.fn_abs, "abs(x)"),
        _spec("floor", (NUMERIC,), (1, 1), _fixed(Type.NUMBER), runtime.fn_floor, "floor(x)"),
        _spec("ceil", (NUMERIC,), (1, 1), _fixed(Type.NUMBER), runtime.fn_ceil, "ceil(x)"),
        _spec("round", (NUMERIC, NUMERIC), (1, 2), _fixed(Type.NUMBER), runtime.fn_round, "round(x, places)"),
        _spec("round_lot", (NUMERIC, NUMERIC), (2, 2), _fixed(Type.NUMBER), runtime.fn_round_lot, "round_lot(x, lot)"),
        _spec("ceil_lot", (NUMERIC, NUMERIC), (2, 2), _fixed(Type.NUMBER), runtime.fn_ceil_lot, "ceil_lot(x, lot)"),
        _spec("len", (frozenset({Kind.STRING, Kind.LIST}),), (1, 1), _fixed(Type.NUMBER), runtime.fn_len, "len(x)"),
        _spec("coalesce", (ANY_KIND,), (2, None), _coalesced, runtime.fn_coalesce, "coalesce(a, b, ...)"),
        _spec(
            "days_between",
            (frozenset({Kind.DATE, Kind.TIMESTAMP}),) * 2,
            (2, 2),
            _fixed(Type.NUMBER),
            runtime.fn_days_between,
            "days_between(from, to)",
        ),
        _spec("lower", (TEXT,), (1, 1), _fixed(Type.STRING), runtime.fn_lower, "lower(s)"),
        _spec("upper", (TEXT,), (1, 1), _fixed(Type.STRING), runtime.fn_upper, "upper(s)"),
        _spec("starts_with", (TEXT, TEXT), (2, 2), _fixed(Type.BOOLEAN), runtime.fn_starts_with, "starts_with(s, prefix)"),
    )
}
"""Every callable function, by name."""

LITERAL_FUNCTIONS: frozenset[str] = frozenset({"date", "timestamp"})
"""Names that look like calls but build constants from a quoted ISO text."""
