"""The ``fairalloc`` command: a thin shell over the library API.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` to a function ``(args) -> int``. This module only
dispatches and turns :class:`~fairalloc.errors.FairallocError` into a rendered message on stderr and
the documented exit status; no traceback reaches a user unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fairalloc.cli._io import report_error
from fairalloc.errors import ExitCode, FairallocError

# Order here is the order in `fairalloc --help`; the text is the one-line help of each command.
COMMANDS: dict[str, str] = {
    "validate": "check policy files",
    "allocate": "allocate a trade's fills under a policy",
    "schema": "print a JSON Schema",
    "policy": "publish policy versions and read the registry",
    "order": "record an order's workflow in the ledger",
    "replay": "recompute recorded allocations from the ledger",
    "ledger": "the system of record: users, verify, export",
    "review": "find cherry-picking and unfair allocation patterns in allocation history",
    "simulate": "write a synthetic firm-year of allocation history (optionally with a cherry-picker)",
    "fmt": "format policy files canonically",
    "test": "run policy tests, with rule coverage",
    "diff": "semantic diff of two policy versions, with impact on recorded trades",
    "serve": "serve allocation and the recorded workflow over HTTP",
}
_GLOBAL_WITH_VALUE = ("--error-format",)


def requested_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if any (skipping the global options)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. With ``only``, just that command's module is imported and registered
    (the others get a placeholder): each command imports what it needs — the ledger's database
    layer, the forensic review's data frames — and `fairalloc validate` must not pay for them."""
    parser = argparse.ArgumentParser(
        prog="fairalloc",
        description="Fair and equitable allocation of block trades, as policy-as-code.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks for internal errors"
    )
    parser.add_argument(
        "--error-format",
        choices=("text", "json"),
        default="text",
        help="how errors are printed on stderr (default: text)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(f"fairalloc.cli.{name}").register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(requested_command(arguments))
    args = parser.parse_args(arguments)
    try:
        status: int = args.handler(args)
    except FairallocError as error:
        report_error(error, args.error_format)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if args.debug:
            raise
        print(
            f"internal error: {type(error).__name__}: {error}\n"
            "  this is a defect in fairalloc; run again with --debug and report the traceback",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
