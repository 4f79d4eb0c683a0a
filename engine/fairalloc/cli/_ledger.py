"""Options and helpers shared by the ledger's subcommands (``ledger``, ``policy``, ``order``,
``replay``): where the ledger is, who is acting, and how results are printed.

Who acts is never an option: it is the operating-system user running the command (SQLite) or
the database role of the connection (PostgreSQL, the user of the ``--ledger`` URL). ``--user``
only names on whose behalf that identity acts; it is recorded beside it and never checked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fairalloc.errors import Diagnostic, InputError
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import DEFAULT_URL, Ledger
from fairalloc.names import NameProblem


def add_ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        metavar="URL",
        default=None,
        help="ledger database: a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        f"(default: $FAIRALLOC_LEDGER, else {DEFAULT_URL.removeprefix('sqlite:///')})",
    )


def add_user_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", metavar="NAME", default=None,
                        help="on whose behalf this step is taken (recorded beside the "
                        "authenticated OS user or database role; not an identity)")


def acting(args: argparse.Namespace, ledger: Ledger) -> Actor:
    """The authenticated actor of this command, with ``--user`` as its "on behalf of"."""
    try:
        return ledger.actor(on_behalf_of=getattr(args, "user", None))
    except NameProblem as problem:
        raise InputError(Diagnostic("bad-user", f"--user: {problem}")) from problem


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="print the result as text or JSON (default: text)")


def open_ledger(args: argparse.Namespace, *, create: bool = False) -> Ledger:
    """Open the ledger the command names; only ``ledger init`` may create one."""
    return Ledger(args.ledger, create=create)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
