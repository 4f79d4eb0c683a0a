"""Options and helpers shared by the ledger's subcommands (``ledger``, ``policy``, ``order``,
``replay``): where the ledger is, who is acting, and how results are printed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fairalloc.ledger.store import DEFAULT_URL, Ledger


def add_ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        metavar="URL",
        default=None,
        help="ledger database: a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        f"(default: $FAIRALLOC_LEDGER, else {DEFAULT_URL.removeprefix('sqlite:///')})",
    )


def add_user_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="the user performing this step (recorded)")


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="print the result as text or JSON (default: text)")


def open_ledger(args: argparse.Namespace, *, create: bool = False) -> Ledger:
    """Open the ledger the command names; only ``ledger init`` may create one."""
    return Ledger(args.ledger, create=create)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
