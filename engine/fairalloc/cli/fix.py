"""``fairalloc fix``: FIX 4.4 messages in, AllocationInstructions (35=J) out.

``fix allocate`` runs the engine on a file of messages; ``fix record`` runs the same messages
through the ledger's recorded workflow. Both print the 35=J messages, SOH-delimited, one per line.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any


def _sending_time(text: str) -> dt.datetime:
    """An ``argparse`` type for ``--sending-time`` (a FIX UTCTimestamp)."""
    try:
        return dt.datetime.strptime(text, "%Y%m%d-%H:%M:%S.%f" if "." in text else "%Y%m%d-%H:%M:%S").replace(
            tzinfo=dt.timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a UTCTimestamp (YYYYMMDD-HH:MM:SS[.sss])") from None


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "fix", help="FIX 4.4: allocate orders and executions, send AllocationInstructions",
        description="Read FIX 4.4 messages (35=D with NoAllocs, 35=8 executions); write 35=J.")
    commands = parser.add_subparsers(dest="fix_command", metavar="STEP", required=True)

    allocate = commands.add_parser(
        "allocate", help="allocate each order of a FIX messages file; print one 35=J per order",
        description="Allocate each 35=D's executions under a policy and print one AllocationInstruction "
                    "(35=J) per order, SOH-delimited, one per line.")
    allocate.add_argument("--policy", required=True, metavar="FILE", help="policy YAML file")
    _common(allocate)
    allocate.set_defaults(handler=_allocate)

    record = commands.add_parser(
        "record", help="record a FIX messages file through the ledger's workflow; print the 35=J sent",
        description="Record each 35=D (statement, then entry: the hard stop), 35=8 (fills) and 35=P/35=AS "
                    "(acknowledgements) in the ledger, allocate the orders with fills, and print the "
                    "AllocationInstructions (35=J) sent. The actor is the operating-system user.")
    _ledger_option(record)
    record.add_argument("--policy", metavar="ID", help="policy id (needed if several are published)")
    _common(record)
    record.set_defaults(handler=_record)

    serve = commands.add_parser(
        "serve", help="accept FIX sessions (QuickFIX), record them in the ledger, send the 35=J",
        description="Run a FIX 4.4 acceptor configured by a QuickFIX settings file: record each 35=D "
                    "(statement and entry: the hard stop), 35=8 (fills, corrections, busts) and 35=P/35=AS "
                    "in the ledger, send a 35=J when an order completes (LeavesQty 0) and a replacement when "
                    "it changes. The actor is the ledger's authenticated identity (the operating-system "
                    "user, or the database role). Needs the 'fix' extra (quickfix). Stops on SIGINT or SIGTERM.")
    serve.add_argument("--settings", required=True, metavar="FILE", help="QuickFIX session settings file")
    _ledger_option(serve)
    serve.add_argument("--policy", metavar="ID", help="policy id (needed if several are published)")
    serve.add_argument("--accounts", metavar="FILE",
                       help="JSON object of account id to attributes; every AllocAccount must be in it")
    serve.add_argument("--identities", metavar="FILE",
                       help="JSON object of counterparty CompID to the ledger user the acceptor acts for "
                            "(the acceptor's identity then needs the service role)")
    serve.set_defaults(handler=_serve)


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    """The option as the ledger's commands word it, without importing the ledger's database layer
    (which `fix allocate` does not use)."""
    parser.add_argument("--ledger", metavar="URL", default=None,
                        help="ledger database: a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
                             "(default: $FAIRALLOC_LEDGER, else fairalloc-ledger.db)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", required=True, metavar="FILE",
                        help="FIX messages, one per line (SOH-delimited, or '|' for hand-written files)")
    parser.add_argument("--accounts", metavar="FILE",
                        help="JSON object of account id to attributes; every AllocAccount must be in it")
    parser.add_argument("--sending-time", type=_sending_time, metavar="YYYYMMDD-HH:MM:SS",
                        help="SendingTime 52 of the 35=J messages (default: the order's latest TransactTime)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the messages here (atomically)")


def _allocate(args: argparse.Namespace) -> int:
    from fairalloc import load_policy
    from fairalloc.cli._io import write_output
    from fairalloc.fix import allocate_messages, load_accounts
    from fairalloc.fix.codec import read_file, read_messages

    policy = load_policy(args.policy)
    accounts = load_accounts(args.accounts) if args.accounts else None
    messages = read_messages(read_file(args.messages), args.messages)
    instructions = allocate_messages(policy, messages, file=args.messages, accounts=accounts,
                                     sending_time=args.sending_time)
    write_output("".join(i.message.decode() + "\n" for i in instructions), args.output)
    return 0


def _record(args: argparse.Namespace) -> int:
    import sys

    from fairalloc.cli._extras import require_extras

    require_extras("'fairalloc fix record'", "ledger")
    from fairalloc.cli._io import write_output
    from fairalloc.cli._ledger import open_ledger
    from fairalloc.fix import load_accounts
    from fairalloc.fix.codec import read_file, read_messages
    from fairalloc.fix.record import record_messages

    accounts = load_accounts(args.accounts) if args.accounts else None
    messages = read_messages(read_file(args.messages), args.messages)
    with open_ledger(args) as ledger:
        recorded = record_messages(ledger, messages, accounts=accounts, policy_id=args.policy,
                                   sending_time=args.sending_time)
    for ack in recorded.acks:
        print(f"35={ack.message.msg_type} for {ack.alloc_id}: {ack.outcome}"
              + (" (alert raised for the CCO)" if ack.rejected else ""), file=sys.stderr)
    write_output("".join(i.message.decode() + "\n" for i in recorded.instructions), args.output)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from fairalloc.cli._extras import require_extras

    require_extras("'fairalloc fix serve'", "fix", "ledger")
    import quickfix

    from fairalloc.cli._ledger import open_ledger
    from fairalloc.errors import Diagnostic, FileAccessError, Location
    from fairalloc.fix import load_accounts, load_identities
    from fairalloc.fix.session import Acceptor, Recorder

    accounts = load_accounts(args.accounts) if args.accounts else None
    identities = load_identities(args.identities) if args.identities else None
    with open_ledger(args) as ledger:
        recorder = Recorder(ledger, accounts, args.policy, identities)
        try:
            acceptor = Acceptor(args.settings, recorder)
        except quickfix.ConfigError as error:
            raise FileAccessError(Diagnostic("fix-settings", f"QuickFIX settings: {error}",
                                             Location(args.settings))) from None
        return _run(acceptor)


def _run(acceptor: Any) -> int:
    """Accept sessions until SIGINT or SIGTERM, then log them out."""
    import signal
    import sys
    import threading

    import quickfix

    from fairalloc.errors import Diagnostic, FileAccessError, Location

    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    # QuickFIX's threads must not take the stop signals (a socket thread interrupted by one left
    # the acceptor crashing as it stopped): they start with both blocked, and only this thread
    # waits for them
    stopping = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        acceptor.start()
    except quickfix.RuntimeError as error:
        raise FileAccessError(Diagnostic("fix-session-start", f"cannot accept sessions: {error}",
                                         Location(acceptor.settings_file))) from None
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
    print("fairalloc fix serve: accepting sessions", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    acceptor.stop()
    return 0
