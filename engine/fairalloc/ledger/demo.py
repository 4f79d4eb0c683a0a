"""The ledger part of the README's main job: a trade day recorded as it happens.

Runs each step as the ``fairalloc`` command a firm would type, printing it first, on the embedded
SQLite ledger ``out/ledger.db`` (created afresh). The orders are those of
``examples/ledger-day/day.json``, dated today and given entry and execution times taken as the
demo runs, so the ledger's own clock shows intent recorded before each order and its fills: users
and roles, policy publication, the rotation position, then per order the pre-trade statement,
entry, fills and allocation, and an override left for the CCO's review. One order is deliberately
late: its fills executed 80 minutes before its statement reaches the ledger, which refuses it
(``intent-after-execution``) until it is recorded as a reason-coded late statement, alerting the
CCO. Then ``ledger alerts``, ``ledger verify``, ``replay`` of the day and the close of day: a signed
checkpoint into ``out/checkpoints/``, ``ledger verify`` against it, and the export for examiners
(with its checkpoint) into ``out/ledger-export/``.

Every step is recorded as the operating-system user running the demo (``--user`` only names on
whose behalf), so that user holds every role here — and, being the override's requester, cannot
review it: the demo shows that refusal. A CCO reviews it from their own account.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fairalloc.cli import main as fairalloc
from fairalloc.errors import Diagnostic, ExitCode, LedgerError
from fairalloc.ledger.identity import os_user

_ROLES = ("pm", "trader", "cco")
_LATE_MINUTES = 80


def _run(*argv: str, expect: ExitCode = ExitCode.OK) -> None:
    print(f"$ fairalloc {shlex.join(argv)}", flush=True)
    status = fairalloc(list(argv))
    if status != expect:
        raise LedgerError(Diagnostic("demo-step-failed", f"step exited {status}, not {int(expect)}: "
                                     f"{shlex.join(argv)}"))


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _as_of_now(doc: dict[str, Any], trade_date: dt.date, executed: dt.datetime) -> dict[str, Any]:
    """``doc`` dated ``trade_date``, entered now (or when executed, if earlier) and executed at
    ``executed``; the order system's own note of when the statement was written just before
    entry (the ledger keeps its own time of receipt beside it)."""
    moved = copy.deepcopy(doc)
    entered = min(executed, dt.datetime.now(dt.timezone.utc))
    moved["order"]["trade_date"] = trade_date.isoformat()
    moved["order"]["entered_at"] = _stamp(entered)
    moved["statement"]["recorded_at"] = _stamp(entered - dt.timedelta(seconds=1))
    for fill in moved["fills"]:
        fill["executed_at"] = _stamp(executed)
    return moved


def run(root: Path = Path("."), out: Path = Path("out")) -> None:
    """Record the example day, as of now, into a fresh ``out/ledger.db`` and check it end to end."""
    day_file = root / "examples" / "ledger-day" / "day.json"
    day: dict[str, Any] = json.loads(day_file.read_text(encoding="utf-8"))
    database = out / "ledger.db"
    trades = out / "ledger-day"
    trades.mkdir(parents=True, exist_ok=True)
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    # The policies' cut-off is the end of the trade date in New York: today there.
    today = dt.datetime.now(ZoneInfo("America/New_York")).date()
    at = ("--ledger", str(database))
    me = os_user()
    print(f"\nLedger: a trade day of {today.isoformat()} recorded as it happens ({database}), "
          f"as the OS user {me}")
    _run("ledger", "init", "--admin", me, *at)
    for role in _ROLES:
        _run("ledger", "user", "grant", me, role, *at)
    _run("ledger", "whoami", *at)
    for policy in sorted((root / "policies").glob("*.yaml")):
        _run("policy", "publish", str(policy), "--user", "cco.reyes", *at)
    for state in day.get("rotation_states", []):
        _run("ledger", "rotation-seed", str(root / (day_file.parent / state).resolve().relative_to(root.resolve())),
             "--user", "cco.reyes", *at)
    for entry in day["orders"]:
        source = json.loads((day_file.parent / entry["trade"]).read_text(encoding="utf-8"))
        trade = trades / Path(entry["trade"]).name
        order_id = source["order"]["id"]
        # The statement comes first; the order and its fills are written as they happen.
        trade.write_text(json.dumps(_as_of_now(source, today, dt.datetime.now(dt.timezone.utc))))
        _run("order", "statement", str(trade), "--user", "pm.alpha", *at)
        trade.write_text(json.dumps(_as_of_now(source, today, dt.datetime.now(dt.timezone.utc))))
        _run("order", "enter", str(trade), "--policy", entry["policy"], "--user", "trader.kim", *at)
        _run("order", "fills", str(trade), "--user", "trader.kim", *at)
        _run("order", "allocate", order_id, "--user", "trader.kim", *at)
        override = entry.get("override")
        if override:
            sets = [f"--set={account}={qty}" for account, qty in override["set"].items()]
            _run("order", "override", order_id, *sets, "--reason", override["reason"],
                 "--memo", override["memo"], "--user", "trader.kim", *at)
            print(f"# {me} asked for the override, so {me} may not approve it, whatever --user says:")
            _run("order", "review", order_id, "--approve", "--memo", "Reason verified.",
                 "--user", "cco.reyes", *at, expect=ExitCode.REFUSED)
    _late_order(day_file, day, today, trades, at)
    _run("ledger", "alerts", *at)
    _run("ledger", "verify", *at)
    _run("replay", "--date", today.isoformat(), *at)
    # Close of day: sign the day's checkpoint, check the ledger against it, export with it.
    key, checkpoints = out / "ledger.key", out / "checkpoints"
    for stale in (key, Path(f"{key}.pub"), *checkpoints.glob("*")):
        stale.unlink(missing_ok=True)
    _run("ledger", "keygen", "--name", "demo.fairalloc.example/ledger", "--key", str(key))
    _run("ledger", "checkpoint", "--key", str(key), "--out", f"{checkpoints}/", *at)
    _run("ledger", "verify", "--checkpoint", str(checkpoints / "latest"), "--verifier-key", f"{key}.pub", *at)
    _run("ledger", "export", "--out", str(out / "ledger-export"), "--date", today.isoformat(),
         "--key", str(key), *at)


def _late_order(day_file: Path, day: dict[str, Any], today: dt.date, trades: Path,
                at: tuple[str, ...]) -> None:
    """An order whose statement reaches the ledger 80 minutes after its fills executed."""
    first = day["orders"][0]
    source = json.loads((day_file.parent / first["trade"]).read_text(encoding="utf-8"))
    source["order"]["id"] = f"{source['order']['id']}-PHONE"
    for fill in source["fills"]:
        fill["id"] = f"PHONE-{fill['id']}"
    executed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=_LATE_MINUTES)
    trade = trades / "late-statement.trade.json"
    trade.write_text(json.dumps(_as_of_now(source, today, executed)))
    order_id = source["order"]["id"]
    print(f"\n# Order {order_id} was executed {_LATE_MINUTES} minutes ago; its statement arrives "
          "only now. The ledger refuses it as pre-trade intent:")
    _run("order", "statement", str(trade), "--user", "pm.alpha", *at, expect=ExitCode.REFUSED)
    print("# It can be recorded only as a late statement, with a reason code, alerting the CCO:")
    _run("order", "statement", str(trade), "--late-reason", "MANUAL-TICKET", "--memo",
         "Telephone order from the client; the PM's written ticket predates it.",
         "--user", "pm.alpha", *at)
    _run("order", "enter", str(trade), "--policy", first["policy"], "--user", "trader.kim", *at)
    _run("order", "fills", str(trade), "--user", "trader.kim", *at)
    _run("order", "allocate", order_id, "--user", "trader.kim", *at)
