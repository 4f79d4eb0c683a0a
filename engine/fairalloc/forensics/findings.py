"""The findings document: a stable JSON schema for what the review found.

Schema ``fairalloc.forensics.findings/1`` (documented field by field in ``docs/forensics.md``)::

    {
      "schema": "fairalloc.forensics.findings/1",
      "settings": {seed, draws, alpha, favoured, market_timezone, market_close, grace_minutes, ...},
      "inputs": {"files": [{file, read, used, refused, reasons, refusals: [diagnostic...]}],
                 "allocations_without_close": int, "price_decimals": int},
      "findings": [{rank, id, analysis, title, statement, flagged, p_value, q_value, evidence}],
      "analyses": {"returns": ..., "intent": ..., "timing": ..., "rotation": ..., "overrides": ...}
    }

Findings are ranked: flagged first, then by q-value (or p-value where there is no q), then by
p-value (records-based timing findings have none and sort after the statistical ones), then by id. The same inputs and seed give byte-identical text:
keys are sorted, floats printed by Python's shortest round-trip ``repr``, and nothing depends on
the clock or the machine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

SCHEMA = "fairalloc.forensics.findings/1"


@dataclass(frozen=True, slots=True)
class Finding:
    """One pattern the review reports, in plain words, with its evidence.

    ``statement`` speaks of patterns and probabilities, never of intent. ``p_value`` is the chance
    of a pattern at least this strong if allocations were unrelated to outcomes; ``q_value`` is the
    Benjamini–Hochberg adjusted value when the finding is one of a scan; both are ``None`` for
    record-based findings (timing).
    """

    id: str
    analysis: str
    title: str
    statement: str
    flagged: bool
    p_value: float | None = None
    q_value: float | None = None
    evidence: dict[str, object] = field(default_factory=dict)


def rank(findings: list[Finding]) -> list[Finding]:
    """Flagged first, then smallest q (else p), then smallest p (None last), then id — a total,
    stable order."""

    def key(f: Finding) -> tuple[int, float, float, str]:
        p = f.p_value if f.p_value is not None else 2.0
        q = f.q_value if f.q_value is not None else p
        return (0 if f.flagged else 1, q, p, f.id)

    return sorted(findings, key=key)


def _clean(value: object) -> object:
    """Make a value JSON-safe and deterministic (no NaN/inf, tuples as lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def document(
    settings: dict[str, object],
    inputs: dict[str, object],
    findings: list[Finding],
    analyses: dict[str, object],
) -> dict[str, object]:
    """The findings document as a JSON-ready mapping (findings already ranked)."""
    return {
        "schema": SCHEMA,
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
                "p_value": _clean(f.p_value),
                "q_value": _clean(f.q_value),
                "evidence": _clean(f.evidence),
            }
            for i, f in enumerate(findings)
        ],
        "analyses": _clean(analyses),
    }


def dumps(doc: dict[str, object]) -> str:
    """Canonical JSON text of a findings document."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
