"""Where policy versions and recorded trades come from: files, git revisions and the ledger.

A policy version is named the way a reviewer would type it:

* ``policies/x.yaml`` — a file in the working tree;
* ``main:policies/x.yaml``, ``HEAD~1:policies/x.yaml`` — that path at that git revision, read with
  ``git show`` (the path is relative to the repository root unless written ``REV:./path``);
* ``ledger:ID@VERSION`` or ``ledger:ID`` (its latest version) — a version published in the
  ledger, rebuilt from its recorded source and checked against its recorded digest; the diff then
  says who published it and when.

An existing file always wins, so a file whose name contains a colon still works. Recorded trades
for impact analysis come from a folder (:func:`fairalloc.review.impact.trade_files`) or from the
ledger (:func:`ledger_trades`). Errors are located diagnostics with stable codes
(``source-not-found``, ``git-unavailable``, ``git-show-failed``, and the ledger's own codes such
as ``policy-not-published``); the policy itself is validated by the engine as usual. The ledger
is imported only when a ledger source is used.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from fairalloc import policy_from_text
from fairalloc.errors import Diagnostic, FileAccessError, Location
from fairalloc.load import read_text
from fairalloc.plan import Policy
from fairalloc.review.impact import Period, RecordedTrade
from fairalloc.rotation import RotationState

LEDGER_PREFIX = "ledger:"


@dataclass(frozen=True, slots=True)
class PolicySource:
    """One policy version: its compiled policy, where it came from and, for the ledger, who published it."""

    spec: str
    kind: str  # 'file' | 'git' | 'ledger'
    policy: Policy
    provenance: str | None = None


def _git_show(spec: str) -> str:
    revision, _, path = spec.partition(":")
    try:
        completed = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True,
                                   encoding="utf-8", check=False)
    except FileNotFoundError:
        raise FileAccessError(Diagnostic("git-unavailable", f"cannot read {spec}: git is not installed",
                                         Location(spec))) from None
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "git show failed"
        raise FileAccessError(Diagnostic(
            "git-show-failed", f"cannot read {path} at revision {revision}: {reason}", Location(spec),
            "write REV:path with the path from the repository root, or REV:./path relative to here"))
    return completed.stdout


def _published(spec: str, ledger_url: str | None) -> PolicySource:
    from fairalloc.ledger.store import Ledger
    from fairalloc.ledger.workflow import find_policy, load_recorded_policy

    with Ledger(ledger_url, create=False) as ledger:
        record = find_policy(ledger, spec.removeprefix(LEDGER_PREFIX))
    provenance = f"published by {record.published_by} at {record.published_at} (ledger event {record.seq})"
    return PolicySource(spec, "ledger", load_recorded_policy(record), provenance)


def load_source(spec: str, ledger_url: str | None = None) -> PolicySource:
    """Read and compile the policy version named by ``spec`` (see the module docstring)."""
    if os.path.exists(spec) or ":" not in spec:
        return PolicySource(spec, "file", policy_from_text(read_text(spec), spec))
    if spec.startswith(LEDGER_PREFIX):
        return _published(spec, ledger_url)
    revision, _, path = spec.partition(":")
    if not revision or not path:
        raise FileAccessError(Diagnostic("source-not-found", f"no such file: {spec}", Location(spec),
                                         "name a policy file, REV:path in git, or ledger:ID@VERSION"))
    return PolicySource(spec, "git", policy_from_text(_git_show(spec), spec))


def ledger_trades(ledger_url: str | None, period: Period) -> tuple[list[RecordedTrade], dict[str, RotationState]]:
    """The allocated orders of the ledger whose trade date is in ``period``, as recorded.

    Each trade is rebuilt as the allocation saw it: the entered order, the recorded statement and
    the fills recorded before the allocation. Also returned: for each rotation group, the rotation
    state the ledger held before the group's first order in the period, so that a replay starts
    where the firm's rotation actually stood.
    """
    from fairalloc.ledger.store import Ledger
    from fairalloc.ledger.workflow import order_record
    from fairalloc.trade import load_trade

    trades: list[RecordedTrade] = []
    states: dict[str, RotationState] = {}
    with Ledger(ledger_url, create=False) as ledger, ledger.read() as session:
        for event in session.query(kinds=["order.allocated"]):
            record = order_record(session, event.order_id or "")
            if record.entered is None or record.statement is None or record.allocation is None:
                continue
            source = f"ledger:{record.order_id}"
            trade = load_trade(record.trade_document(record.allocation.seq), file=source)
            if not period.contains(trade.order.trade_date):
                continue
            before = record.allocation.data().get("rotation_before")
            if before is not None and before["group"] not in states:
                states[before["group"]] = RotationState.from_json(before, source)
            trades.append(RecordedTrade(source, trade))
    return trades, states
