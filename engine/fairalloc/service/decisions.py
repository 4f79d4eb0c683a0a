"""Decision logs: one JSON line per decision, for audit pipelines (as OPA's decision logs).

Each line names the decision id the client received, the time, the authenticated subject, the
policy id, version and digest, the SHA-256 of the input (the trade document's canonical JSON) and
of the result (the allocation document's), the duration, and — for a recorded allocation — the
ledger event it is recorded as. Lines go to a file (appended, one ``write`` each, so processes
sharing a file do not interleave within a line) or to stdout (``-``). A line that cannot be
written is counted (``fairalloc_decision_log_unwritten_total``), never dropped silently, and the
decision itself still stands: the ledger, not the log, is the system of record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import threading
from typing import Any

from prometheus_client import Counter

from fairalloc.ledger.chain import canonical_json


def digest(value: Any) -> str:
    """``sha256:`` of a JSON value's canonical form (the ledger's canonical JSON)."""
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


class DecisionLog:
    """Appends decision lines to ``target`` (a path, ``-`` for stdout, or None for no log)."""

    def __init__(self, target: str | None, unwritten: Counter) -> None:
        self.target = target
        self.unwritten = unwritten
        self._lock = threading.Lock()
        self._fd: int | None = None
        if target not in (None, "-"):
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    @property
    def enabled(self) -> bool:
        """Whether lines are written at all (``--decision-log`` given)."""
        return self.target is not None

    def write(self, entry: dict[str, Any]) -> None:
        """Write one line; count it as unwritten if that fails."""
        if self.target is None:
            return
        line = (json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        try:
            with self._lock:
                if self._fd is None:
                    sys.stdout.buffer.write(line)
                    sys.stdout.buffer.flush()
                elif os.write(self._fd, line) != len(line):
                    raise OSError("short write")
        except (OSError, ValueError):
            self.unwritten.inc()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def now_text() -> str:
    """The wall-clock time of a decision line (UTC, microseconds): the service's, not the engine's."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
