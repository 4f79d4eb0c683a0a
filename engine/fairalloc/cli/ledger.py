"""``fairalloc ledger``: set up a ledger, manage users and roles, verify the chain, export."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fairalloc import RotationState
from fairalloc.cli import _checkpoint
from fairalloc.cli._io import argparse_date
from fairalloc.cli._ledger import acting, add_format_option, add_ledger_option, add_user_option, emit_json, open_ledger
from fairalloc.errors import Diagnostic, ExitCode, InputError
from fairalloc.ledger import workflow
from fairalloc.ledger.export import export
from fairalloc.ledger.roles import setup_roles
from fairalloc.ledger.verify import Anchor, verify
from fairalloc.load import read_text
from fairalloc.trade import parse_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ledger", help="the system of record: users, verify, export")
    sub = parser.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)

    init = sub.add_parser("init", help="create (or migrate) a ledger and name its first admin")
    add_ledger_option(init)
    init.add_argument("--admin", required=True,
                      help="the OS user (SQLite) or database role (PostgreSQL) to receive the admin role")
    init.set_defaults(handler=_init)

    who = sub.add_parser("whoami", help="the identity this ledger records for you, and its roles")
    add_ledger_option(who)
    who.set_defaults(handler=_whoami)

    roles = sub.add_parser("roles", help="PostgreSQL: create the writer and reader roles "
                           "(run as the owner)")
    roles.add_argument("--writer", action="append", default=[], metavar="ROLE",
                       help="a login role that records events (repeat)")
    roles.add_argument("--reader", action="append", default=[], metavar="ROLE",
                       help="a login role that only reads (repeat)")
    add_ledger_option(roles)
    roles.set_defaults(handler=_roles)

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
    _checkpoint.add_verify_options(check)
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
    out.add_argument("--key", type=Path, help="sign a checkpoint of the exported ledger into "
                     "DIR/checkpoint (the signing key from ledger keygen)")
    out.set_defaults(handler=_export)

    _checkpoint.register(sub)


def _init(args: argparse.Namespace) -> int:
    with open_ledger(args, create=True) as ledger:
        event = workflow.initialise(ledger, acting(args, ledger), args.admin)
        print(f"ledger ready at {ledger.url}; {event.data()['user']} is its admin (event {event.seq})")
    return int(ExitCode.OK)


def _whoami(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        identity = ledger.identity()
        roles = workflow.list_users(ledger).get(identity.name, set())
    print(f"{identity.name} ({identity.source}): {', '.join(sorted(roles)) or '(no roles)'}")
    return int(ExitCode.OK)


def _roles(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        statements = setup_roles(ledger, args.writer, args.reader)
    for statement in statements:
        print(statement + ";")
    return int(ExitCode.OK)


def _set_role(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        event = workflow.set_role(ledger, acting(args, ledger), args.name, args.role, grant=args.grant)
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
        event = workflow.seed_rotation(ledger, acting(args, ledger), state)
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
        report.findings += _checkpoint.verify_findings(args, session)
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
    key = _checkpoint.signing_key(args.key) if args.key is not None else None
    with open_ledger(args) as ledger:
        summary = export(ledger, args.out, args.date, key)
    for name, rows in summary.files.items():
        print(f"{args.out / name}: {rows} rows")
    if summary.head is not None:
        print(f"anchor {summary.head.seq}:{summary.head.hash}")
    if key is not None:
        print(f"{args.out / 'checkpoint'}: signed checkpoint by {key.name}")
    return int(ExitCode.OK)
