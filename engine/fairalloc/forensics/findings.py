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
from dataclasses import dataclass, field

SCHEMA = "fairalloc.forensics.findings/2"


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


def dumps(doc: dict[str, object]) -> str:
    """Canonical JSON text of a findings document: sorted keys, compact separators.

    Compact so that the C encoder of the standard library runs (an indented dump goes through the
    pure-Python encoder, minutes for the hundreds of thousands of records a large history can
    list); one finding, analysis or input file per line keeps the text readable with ``jq``."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")) + "\n"
