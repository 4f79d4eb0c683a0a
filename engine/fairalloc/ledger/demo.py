"""The ledger part of the README's main job: the example trade day through the recorded workflow.

Runs each step as the ``fairalloc`` command a firm would type, printing it first, on the embedded
SQLite ledger ``out/ledger.db`` (created afresh): users and roles, policy publication, then for
every order of ``examples/ledger-day/day.json`` (after seeding the rotation positions it names)
the pre-trade statement, order entry, fills and
allocation, an override with its CCO review, and finally ``ledger verify``, ``replay`` of the whole
day and the export for examiners into ``out/ledger-export/``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from fairalloc.cli import main as fairalloc
from fairalloc.errors import ExitCode, LedgerError, Diagnostic

_STAFF = (("pm.alpha", "pm"), ("trader.kim", "trader"), ("cco.reyes", "cco"))


def _run(*argv: str) -> None:
    print(f"$ fairalloc {shlex.join(argv)}", flush=True)
    status = fairalloc(list(argv))
    if status != ExitCode.OK:
        raise LedgerError(Diagnostic("demo-step-failed", f"step exited {status}: {shlex.join(argv)}"))


def run(root: Path = Path("."), out: Path = Path("out")) -> None:
    """Record the example day into a fresh ``out/ledger.db`` and check it end to end."""
    day_file = root / "examples" / "ledger-day" / "day.json"
    day: dict[str, Any] = json.loads(day_file.read_text(encoding="utf-8"))
    database = out / "ledger.db"
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    at = ("--ledger", str(database))
    print(f"\nLedger: the trade day {day['trade_date']} through the recorded workflow ({database})")
    _run("ledger", "init", "--admin", "admin.lee", *at)
    for user, role in _STAFF:
        _run("ledger", "user", "grant", user, role, "--user", "admin.lee", *at)
    for policy in sorted((root / "policies").glob("*.yaml")):
        _run("policy", "publish", str(policy), "--user", "cco.reyes", *at)
    for state in day.get("rotation_states", []):
        _run("ledger", "rotation-seed", str(root / (day_file.parent / state).resolve().relative_to(root.resolve())),
             "--user", "cco.reyes", *at)
    for entry in day["orders"]:
        trade = str(root / (day_file.parent / entry["trade"]).resolve().relative_to(root.resolve()))
        order_id = json.loads(Path(trade).read_text(encoding="utf-8"))["order"]["id"]
        _run("order", "statement", trade, "--user", "pm.alpha", *at)
        _run("order", "enter", trade, "--policy", entry["policy"], "--user", "trader.kim", *at)
        _run("order", "fills", trade, "--user", "trader.kim", *at)
        _run("order", "allocate", order_id, "--user", "trader.kim", *at)
        override = entry.get("override")
        if override:
            sets = [f"--set={account}={qty}" for account, qty in override["set"].items()]
            _run("order", "override", order_id, *sets, "--reason", override["reason"],
                 "--memo", override["memo"], "--user", "trader.kim", *at)
            _run("order", "review", order_id, "--approve", "--memo", "Reason verified against the "
                 "account's records.", "--user", "cco.reyes", *at)
    _run("ledger", "alerts", *at)
    _run("ledger", "verify", *at)
    _run("replay", "--date", day["trade_date"], *at)
    _run("ledger", "export", "--out", str(out / "ledger-export"), "--date", day["trade_date"], *at)
