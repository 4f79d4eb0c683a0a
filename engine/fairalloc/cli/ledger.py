"""``fairalloc ledger``: set up a ledger, manage users and roles, verify the chain, export."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fairalloc import RotationState
from fairalloc.cli._io import argparse_date
from fairalloc.cli._ledger import add_format_option, add_ledger_option, add_user_option, emit_json, open_ledger
from fairalloc.errors import Diagnostic, ExitCode, InputError
from fairalloc.ledger import workflow
from fairalloc.ledger.export import export
from fairalloc.ledger.verify import Anchor, verify
from fairalloc.load import read_text
from fairalloc.trade import parse_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ledger", help="the system of record: users, verify, export")
    sub = parser.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)

    init = sub.add_parser("init", help="create (or migrate) a ledger and name its first admin")
    add_ledger_option(init)
    init.add_argument("--admin", required=True, help="user to receive the admin role")
    init.set_defaults(handler=_init)

    user = sub.add_parser("user", help="grant, revoke or list roles (trader, pm, cco, admin)")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    for name, grant in (("grant", True), ("revoke", False)):
        action = user_sub.add_parser(name, help=f"{name} a role (admins only)")
        action.add_argument("name", help="the user whose role changes")
        action.add_argument("role", choices=workflow.ROLES)
        add_user_option(action)
        add_ledger_option(action)
        action.set_defaults(handler=_set_role, grant=grant)
    listing = user_sub.add_parser("list", help="users and the roles they hold")
    add_ledger_option(listing)
    add_format_option(listing)
    listing.set_defaults(handler=_list_users)

    seed = sub.add_parser("rotation-seed", help="record a rotation group's starting position "
                          "(before its first allocation here)")
    seed.add_argument("state", help='rotation state JSON: {"group": ..., "position": N, "day": ...}')
    add_user_option(seed)
    add_ledger_option(seed)
    seed.set_defaults(handler=_seed)

    check = sub.add_parser("verify", help="walk the hash chain; exit 1 at the first break")
    add_ledger_option(check)
    add_format_option(check)
    check.add_argument("--anchor", metavar="SEQ:HASH",
                       help="a head recorded earlier (ledger head, head.json of an export)")
    check.set_defaults(handler=_verify)

    head = sub.add_parser("head", help="print the chain head (keep it elsewhere as an anchor)")
    add_ledger_option(head)
    head.set_defaults(handler=_head)

    alerts = sub.add_parser("alerts", help="alerts raised for the CCO (late allocations, overrides)")
    add_ledger_option(alerts)
    add_format_option(alerts)
    alerts.set_defaults(handler=_alerts)

    out = sub.add_parser("export", help="CSV and JSON Lines record set for examiners and review")
    add_ledger_option(out)
    out.add_argument("--out", required=True, type=Path, help="directory to write into")
    out.add_argument("--date", type=argparse_date, help="only orders of this trade date (YYYY-MM-DD)")
    out.set_defaults(handler=_export)


def _init(args: argparse.Namespace) -> int:
    with open_ledger(args, create=True) as ledger:
        if "admin" in workflow.list_users(ledger).get(args.admin, set()):
            print(f"ledger ready at {ledger.url}; {args.admin} is already an admin")
            return int(ExitCode.OK)
        workflow.set_role(ledger, args.admin, args.admin, "admin", grant=True)
        print(f"ledger ready at {ledger.url}; {args.admin} is its admin")
    return int(ExitCode.OK)


def _set_role(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        event = workflow.set_role(ledger, args.user, args.name, args.role, grant=args.grant)
    verb = "granted" if args.grant else "revoked"
    print(f"{verb} {args.role} {'to' if args.grant else 'from'} {args.name} (event {event.seq})")
    return int(ExitCode.OK)


def _list_users(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        users = workflow.list_users(ledger)
    if args.format == "json":
        emit_json({user: sorted(roles) for user, roles in users.items()})
        return int(ExitCode.OK)
    for user, roles in users.items():
        print(f"{user}: {', '.join(sorted(roles)) or '(no roles)'}")
    return int(ExitCode.OK)


def _seed(args: argparse.Namespace) -> int:
    state = RotationState.from_json(parse_json(read_text(args.state), args.state), args.state)
    with open_ledger(args) as ledger:
        event = workflow.seed_rotation(ledger, args.user, state)
    print(f"rotation {state.group} starts at position {state.position} (event {event.seq})")
    return int(ExitCode.OK)


def _anchor(text: str | None) -> Anchor | None:
    if text is None:
        return None
    match = re.fullmatch(r"(\d+):([0-9a-f]{64})", text.strip())
    if not match:
        raise InputError(Diagnostic("bad-anchor", f"not an anchor: {text!r}",
                                    hint="write SEQ:HASH as printed by: fairalloc ledger head"))
    return Anchor(int(match.group(1)), match.group(2))


def _verify(args: argparse.Namespace) -> int:
    anchor = _anchor(args.anchor)
    with open_ledger(args) as ledger, ledger.read() as session:
        report = verify(session, anchor)
    if args.format == "json":
        emit_json({"ok": report.ok, "events": report.events,
                   "head": {"seq": report.head.seq, "hash": report.head.hash} if report.head else None,
                   "findings": [d.to_json() for d in report.findings]})
    else:
        for finding in report.findings:
            print(finding.render())
        head = f"; head {report.head.seq}:{report.head.hash}" if report.head else ""
        state = "intact" if report.ok else "BROKEN"
        print(f"ledger {state}: {report.events} events checked{head}")
    return int(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)


def _head(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger, ledger.read() as session:
        head = session.head()
    print(f"{head.seq}:{head.hash}" if head else "0:" + "0" * 64)
    return int(ExitCode.OK)


def _alerts(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        raised = workflow.alerts(ledger)
    if args.format == "json":
        emit_json([{"seq": e.seq, "recorded_at": e.recorded_at, "order_id": e.order_id, **e.data()}
                   for e in raised])
        return int(ExitCode.OK)
    for event in raised:
        data = event.data()
        print(f"{event.recorded_at}  {data['alert']}  {data['message']}")
    return int(ExitCode.OK)


def _export(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        summary = export(ledger, args.out, args.date)
    for name, rows in summary.files.items():
        print(f"{args.out / name}: {rows} rows")
    if summary.head is not None:
        print(f"anchor {summary.head.seq}:{summary.head.hash}")
    return int(ExitCode.OK)
