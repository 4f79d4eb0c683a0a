"""The findings document: a stable JSON schema for what the review found.

Schema ``fairalloc.forensics.findings/2`` (documented field by field in ``docs/forensics.md``)::

    {
      "schema": "fairalloc.forensics.findings/2",
      "verdict": {status: "flagged" | "clean" | "not_tested", exit_code, flagged: [id],
                  not_tested: [id]},
      "settings": {seed, draws, alpha, favoured, market_timezone, market_close, grace_minutes,
                   deadline, ...},
      "inputs": {"files": [{file, read, used, refused, reasons, refusals: [diagnostic...]}],
                 "allocations_without_close": int, "price_decimals": int},
      "findings": [{rank, id, analysis, title, statement, flagged, tested, severity, p_value,
                    p_value_is_upper_bound, q_value, method, evidence}],
      "analyses": {"returns": ..., "intent": ..., "timing": ..., "rotation": ..., "overrides": ...}
    }

Version 2 changed the meaning of the return findings (the within-order re-allocation test is
now ``returns.favoured.*``), replaced the timing categories by severities against the policy's
deadline, and added ``verdict`` and each finding's ``method``, ``tested``, ``severity`` and
``p_value_is_upper_bound``.

Findings are ranked: flagged first, then tests that could not run, then by q-value (or p-value where there is no q), then by
p-value (records-based timing findings have none and sort after the statistical ones), then by id. The same inputs and seed give byte-identical text:
keys are sorted, separators compact, floats printed by Python's shortest round-trip ``repr``,
and nothing depends on the clock or the machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import polars as pl

SCHEMA = "fairalloc.forensics.findings/2"
#: Records of a :class:`Records` table turned into JSON text at a time (bounds the memory of
#: writing a listing of millions of records to a few tens of megabytes).
RECORDS_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class Finding:
    """One pattern the review reports, in plain words, with its evidence.

    ``statement`` speaks of patterns and probabilities, never of intent. ``p_value`` is the chance
    of a pattern at least this strong if allocations were unrelated to outcomes; ``q_value`` is the
    Benjamini–Hochberg adjusted value when the finding is one of a scan; both are ``None`` for
    record-based findings (timing). ``p_value_is_upper_bound`` is true when the p-value is a
    Monte Carlo bound (no draw was as extreme). ``method`` names the test, its null hypothesis,
    assumptions and how the p-value was computed. ``tested`` is false when the test could not run
    (the statement says why); such a finding is never flagged and makes the verdict
    ``not_tested``. ``severity`` grades record-based findings (``info`` does not count).
    """

    id: str
    analysis: str
    title: str
    statement: str
    flagged: bool
    p_value: float | None = None
    q_value: float | None = None
    evidence: dict[str, object] = field(default_factory=dict)
    method: dict[str, object] = field(default_factory=dict)
    p_value_is_upper_bound: bool = False
    tested: bool = True
    severity: str | None = None


def rank(findings: list[Finding]) -> list[Finding]:
    """Flagged first, then smallest q (else p), then smallest p (None last), then id — a total,
    stable order."""

    def key(f: Finding) -> tuple[int, int, float, float, str]:
        p = f.p_value if f.p_value is not None else 2.0
        q = f.q_value if f.q_value is not None else p
        return (0 if f.flagged else 1, 1 if f.tested else 0, q, p, f.id)

    return sorted(findings, key=key)


#: Values that are JSON-safe as they are: skipped without a call (a large history lists
#: hundreds of thousands of records, millions of such values).
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})


def _clean(value: object) -> object:
    """Make a value JSON-safe and deterministic (no NaN/inf, tuples as lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): v if type(v) in _PLAIN else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else _clean(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a :class:`Records` table, dictionary-encoded: row ``i`` holds
    ``values[codes[i]]`` (a name list and integer codes, or the distinct values of an array)."""

    codes: npt.NDArray[np.int64]
    values: Sequence[object]

    @classmethod
    def distinct(cls, array: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> Column:
        """The column of a numeric array: its distinct values and each row's index into them.
        Floats are told apart by their bits, so -0.0 and 0.0 stay two values (as ``repr``
        writes them)."""
        bits = array.view(np.int64) if array.dtype == np.float64 else array.astype(np.int64)
        unique, codes = np.unique(bits, return_inverse=True)
        values = unique.view(np.float64) if array.dtype == np.float64 else unique
        return cls(codes.astype(np.int64, copy=False), values.tolist())


class Records(Sequence[dict[str, object]]):
    """A long list of records with the same keys, held by column.

    The timing listings of a large history hold millions of records: kept as columns they take
    a few bytes a record instead of a dict each, and :func:`dumps` writes them in blocks — the
    same text, byte for byte, that ``json.dumps`` writes for the list of dicts. Indexing and
    iterating give the records as dicts.
    """

    def __init__(self, columns: dict[str, Column]) -> None:
        sizes = {column.codes.size for column in columns.values()}
        if len(sizes) > 1:
            raise ValueError(f"columns of different lengths: {sorted(sizes)}")
        self._columns = {
            name: Column(column.codes, [v if type(v) in _PLAIN else _clean(v) for v in column.values])
            for name, column in sorted(columns.items())
        }
        self._length = sizes.pop() if sizes else 0

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> dict[str, object]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, object]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, object] | list[dict[str, object]]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(self._length))]
        if not -self._length <= index < self._length:
            raise IndexError("record index out of range")
        return self._record(index % self._length)

    def _record(self, i: int) -> dict[str, object]:
        return {name: column.values[int(column.codes[i])] for name, column in self._columns.items()}

    def json_pieces(self) -> Iterator[str]:
        """The JSON text of the list, in pieces of at most :data:`RECORDS_BLOCK` records: each
        distinct value is encoded once, then the records are assembled column by column."""
        if not self._length:
            yield "[]"
            return
        encoded = [pl.Series([_value_json(v) for v in column.values], dtype=pl.String)
                   for column in self._columns.values()]
        keys = [("{" if i == 0 else ",") + _dumps(name) + ":"
                for i, name in enumerate(self._columns)]
        yield "["
        for start in range(0, self._length, RECORDS_BLOCK):
            block = pl.DataFrame({
                str(i): values.gather(column.codes[start:start + RECORDS_BLOCK])
                for i, (values, column) in enumerate(zip(encoded, self._columns.values(),
                                                         strict=True))
            })
            parts: list[pl.Expr] = []
            for i, key in enumerate(keys):
                parts += [pl.lit(key), pl.col(str(i))]
            text = block.select(pl.concat_str([*parts, pl.lit("}")])).to_series().str.join(",")
            yield ("," if start else "") + str(text.item())
        yield "]"


def verdict(findings: list[Finding]) -> dict[str, object]:
    """Flagged if any finding is flagged; else not tested if any test could not run; else clean.

    The exit codes are those of ``fairalloc review`` (``docs/cli.md``): 1, 8 and 0.
    """
    flagged = [f.id for f in findings if f.flagged]
    not_tested = [f.id for f in findings if not f.tested]
    status, code = ("flagged", 1) if flagged else (("not_tested", 8) if not_tested else ("clean", 0))
    return {"status": status, "exit_code": code, "flagged": flagged, "not_tested": not_tested}


def document(
    settings: dict[str, object],
    inputs: dict[str, object],
    findings: list[Finding],
    analyses: dict[str, object],
) -> dict[str, object]:
    """The findings document as a JSON-ready mapping (findings already ranked)."""
    return {
        "schema": SCHEMA,
        "verdict": verdict(findings),
        "settings": _clean(settings),
        "inputs": _clean(inputs),
        "findings": [
            {
                "rank": i + 1,
                "id": f.id,
                "analysis": f.analysis,
                "title": f.title,
                "statement": f.statement,
                "flagged": f.flagged,
                "tested": f.tested,
                "severity": f.severity,
                "p_value": _clean(f.p_value),
                "p_value_is_upper_bound": f.p_value_is_upper_bound,
                "q_value": _clean(f.q_value),
                "method": _clean(f.method),
                "evidence": _clean(f.evidence),
            }
            for i, f in enumerate(findings)
        ],
        "analyses": _clean(analyses),
    }


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))


#: The text ``json.dumps`` gives a scalar of each type, by the functions it calls for them
#: (``float.__repr__`` only for finite floats; anything else goes through ``json.dumps``).
_SCALAR_JSON: dict[type, Callable[[Any], str]] = {
    str: encode_basestring, int: int.__repr__, bool: lambda v: "true" if v else "false",
    type(None): lambda _v: "null",
}


def _value_json(value: object) -> str:
    """``_dumps(value)`` without a call into the encoder for a text, integer, finite float, bool
    or null: the listings encode hundreds of thousands of distinct values."""
    encode = _SCALAR_JSON.get(type(value))
    if encode is not None:
        return encode(value)
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    return _dumps(value)


def _holds_records(value: object) -> bool:
    if isinstance(value, Records):
        return True
    if isinstance(value, dict):
        return any(_holds_records(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_records(v) for v in value)
    return False


def _pieces(value: object) -> Iterator[str]:
    """JSON text of ``value`` in pieces: the C encoder of the standard library for everything
    but the containers that hold a :class:`Records` table, which are walked here (the keys of a
    findings document are text, so sorting the items is what ``sort_keys`` does)."""
    if isinstance(value, Records):
        yield from value.json_pieces()
    elif isinstance(value, dict) and _holds_records(value):
        for i, (key, item) in enumerate(sorted(value.items())):
            yield ("{" if i == 0 else ",") + _dumps(key) + ":"
            yield from _pieces(item)
        yield "}"
    elif isinstance(value, list | tuple) and _holds_records(value):
        for i, item in enumerate(value):
            yield "[" if i == 0 else ","
            yield from _pieces(item)
        yield "]"
    else:
        yield _dumps(value)


def json_pieces(doc: dict[str, object]) -> Iterator[str]:
    """The text of :func:`dumps` in pieces, for writing a large document without holding it."""
    yield from _pieces(doc)
    yield "\n"


def dumps(doc: dict[str, object]) -> str:
    """Canonical JSON text of a findings document: sorted keys, compact separators.

    Compact so that the C encoder of the standard library runs (an indented dump goes through the
    pure-Python encoder, minutes for the hundreds of thousands of records a large history can
    list); one finding, analysis or input file per line keeps the text readable with ``jq``."""
    return "".join(json_pieces(doc))
