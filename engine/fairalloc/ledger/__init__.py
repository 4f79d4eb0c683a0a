"""The ledger: the system of record behind the allocation engine.

An append-only, hash-chained log of events on SQLite (embedded default) or PostgreSQL (many
engine processes), recording the playbook's sequence: policy versions, pre-trade statements,
orders (hard stop without intent), fills, allocations (with rotation positions), overrides and
their CCO review. ``verify`` proves nothing was changed, ``replay`` recomputes allocations from the
record, ``export`` writes the record set examiners and the forensic review read.

Modules by stage: ``chain`` (canonical form, hashes) → ``store`` (transactions, append) →
``workflow`` (the steps and their checks) → ``verify``, ``replay``, ``export``.
"""

from fairalloc.ledger.store import Ledger, NewEvent
from fairalloc.ledger.verify import Anchor, VerifyReport, verify

__all__ = ["Anchor", "Ledger", "NewEvent", "VerifyReport", "verify"]
