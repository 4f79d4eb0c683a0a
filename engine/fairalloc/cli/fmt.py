"""``fairalloc fmt [--check] PATH...``: rewrite policy files in the canonical layout.

A PATH is a policy or policy test file, or a folder, in which both are found by their top-level
key (``fairalloc``, ``cases``; :mod:`fairalloc.cli._files`).
Without ``--check`` each file that is not canonical is rewritten atomically. With ``--check``
nothing is written; the command lists the files that would change and exits 1 (for CI and the
pre-commit hook). A file that is not loadable YAML is reported with its location (exit 3) and
the other files are still processed.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from fairalloc.cli._files import POLICY_KEY, TEST_KEY, find_files
from fairalloc.cli._io import report_error, write_output
from fairalloc.errors import ExitCode, FairallocError
from fairalloc.review.fmt import Formatted, format_file


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "fmt",
        help="format policy files canonically",
        description="Rewrite policy YAML files in the canonical layout, keeping comments and key order. "
        "Formatting never changes a policy's meaning or digest.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="policy or policy test YAML files, or folders searched for them")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any file is not in the canonical layout")
    parser.add_argument("--diff", action="store_true", help="with --check, print what would change")
    parser.set_defaults(handler=run)


def _show_diff(result: Formatted) -> None:
    sys.stdout.writelines(difflib.unified_diff(
        result.original.splitlines(keepends=True), result.text.splitlines(keepends=True),
        fromfile=result.file, tofile=f"{result.file} (formatted)",
    ))


def run(args: argparse.Namespace) -> int:
    status = ExitCode.OK
    unformatted = 0
    for path in find_files(args.paths, POLICY_KEY, TEST_KEY):
        try:
            result = format_file(path)
        except FairallocError as error:
            report_error(error, args.error_format)
            status = error.exit_code if status == ExitCode.OK else max(status, error.exit_code)
            continue
        if not result.changed:
            continue
        unformatted += 1
        if args.check:
            print(f"would reformat {path}")
            if args.diff:
                _show_diff(result)
        else:
            write_output(result.text, path)
            print(f"reformatted {path}")
    if status != ExitCode.OK:
        return int(status)
    if args.check and unformatted:
        print(f"{unformatted} file(s) would be reformatted; run: fairalloc fmt PATH...", file=sys.stderr)
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)
