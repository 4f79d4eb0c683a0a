"""The ``fairalloc`` command: a thin shell over the library API.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` to a function ``(args) -> int``. This module only
dispatches and turns :class:`~fairalloc.errors.FairallocError` into a rendered message on stderr and
the documented exit status; no traceback reaches a user unless ``--debug`` is given.

Only the module of the command being run is imported: each command imports what it needs — the
ledger's database layer, the forensic review's data frames — and `fairalloc validate` must not pay
for them, nor fail when an optional extra is not installed (:mod:`fairalloc.cli._extras`).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from fairalloc.cli._extras import (
    COMMAND_EXTRAS,
    DISTRIBUTION,
    MissingExtraError,
    extra_providing,
    missing_module_error,
    require_extras,
)
from fairalloc.cli._io import report_error
from fairalloc.command import COMMANDS as COMMANDS
from fairalloc.command import ONE_SHOT, requested_command
from fairalloc.errors import ExitCode, FairallocError


def version() -> str:
    """The installed distribution's version (package metadata), or ``unknown`` in a bare source tree."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, reading the package metadata only when it is asked for: importing
    ``importlib.metadata`` and reading the distribution costs every other command's start-up."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str = "show program's version number and exit") -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stdout.write(f"fairalloc {version()}\n")
        parser.exit()


def terminal_columns() -> int:
    """The columns of ``shutil.get_terminal_size()``, without importing shutil (with its archive
    modules) at every start-up: ``COLUMNS`` when it is a positive number, else the width of the
    terminal on standard output, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter at the width it would choose itself (``terminal_columns() - 2``).
    argparse makes one for every argument added, and each would import shutil to find the width."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


class _ArgumentParser(argparse.ArgumentParser):
    """The parser of the command and of every subcommand (argparse gives subparsers the class of
    their parent): formatted by :class:`_HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def error_format(argv: Sequence[str]) -> str:
    """The ``--error-format`` given before the subcommand, read before the parser can be built
    (a command whose extra is missing is reported before its parser exists)."""
    for index, token in enumerate(argv):
        if token == "--error-format" and index + 1 < len(argv):
            return argv[index + 1]
        if token.startswith("--error-format="):
            return token.partition("=")[2]
        if not token.startswith("-"):
            break
    return "text"


def build_parser(commands: Iterable[str] = (), listed: bool = True) -> argparse.ArgumentParser:
    """The argument parser, with the named ``commands`` registered in full and, when ``listed``,
    the others as placeholders that only list their name and help (for ``fairalloc --help`` and
    the message naming an unknown command). A named command whose extra is missing raises
    :class:`~fairalloc.cli._extras.MissingExtraError`."""
    parser = _ArgumentParser(
        prog="fairalloc",
        description="Fair and equitable allocation of block trades, as policy-as-code.",
    )
    parser.add_argument("--version", action=_VersionAction)
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
    full = set(commands)
    for name, help_text in COMMANDS.items():
        if name in full:
            require_extras(f"'fairalloc {name}'", *COMMAND_EXTRAS.get(name, ()))
            importlib.import_module(f"fairalloc.cli.{name}").register(sub)
        elif listed:
            sub.add_parser(name, help=help_text)
    return parser


def installed_commands() -> list[str]:
    """The commands whose extras are installed: those a completion script can describe in full."""
    available = []
    for name in COMMANDS:
        try:
            require_extras(name, *COMMAND_EXTRAS.get(name, ()))
        except MissingExtraError:
            continue
        available.append(name)
    return available


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command, plain = requested_command(arguments)
    if argv is None and command in ONE_SHOT:
        # What a one-shot command builds (a trade's attributes, the result document) lives until
        # the process ends, and reference counting frees the rest; the cycle collector would only
        # scan it over and over as it grows (a collection landing while a 100,000-account document
        # is built costs ~20 times the building). So a process that does one such command runs
        # without it; a library caller (argv given: tests, an embedding program) keeps its own.
        gc.disable()
    try:
        parser = build_parser([command] if command else [], listed=not plain)
    except FairallocError as error:
        report_error(error, error_format(arguments))
        return int(error.exit_code)
    args = parser.parse_args(arguments)
    try:
        status: int = args.handler(args)
    except FairallocError as error:
        report_error(error, args.error_format)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        extra = extra_providing(error.name)
        if extra is None or args.debug:
            return _internal_error(error, args.debug)
        missing = missing_module_error(f"'fairalloc {args.command}'", error.name or "", extra)
        report_error(missing, args.error_format)
        return int(missing.exit_code)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        return _internal_error(error, args.debug)
    return status


def _internal_error(error: Exception, debug: bool) -> int:
    if debug:
        raise error
    print(
        f"internal error: {type(error).__name__}: {error}\n"
        "  this is a defect in fairalloc; run again with --debug and report the traceback",
        file=sys.stderr,
    )
    return int(ExitCode.INTERNAL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
