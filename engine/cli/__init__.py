"""The ``fairalloc`` command: a thin shell over the library API.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` to a function ``(args) -> int``. This module only
dispatches and turns :class:`~engine.errors.FairallocError` into a rendered message on stderr and
the documented exit status; no traceback reaches a user unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from engine.cli._io import report_error
from engine.errors import ExitCode, FairallocError

# Order here is the order in `fairalloc --help`.
COMMANDS: tuple[str, ...] = (
    "validate",
    "allocate",
    "schema",
    "policy",
    "order",
    "replay",
    "ledger",
    "review",
    "simulate",
)


def build_parser() -> argparse.ArgumentParser:
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
    for name in COMMANDS:
        module = importlib.import_module(f"engine.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
