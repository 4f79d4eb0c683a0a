"""``fairalloc validate PATH...``: check policy files, reporting every problem with its location.

A PATH is a policy file or a folder, in which the policies are found by their top-level
``fairalloc`` key (:mod:`fairalloc.cli._files`). A folder without policies is reported (exit 1):
a CI job pointed at the wrong folder must not pass by checking nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fairalloc import load_policy
from fairalloc.cli._files import POLICY_KEY, find_files
from fairalloc.cli._io import dump_json, report_error
from fairalloc.errors import ExitCode, FairallocError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check policy files", description="Validate policy files: structure, expressions, semantics."
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="policy YAML files, or folders searched for policies (files with a top-level 'fairalloc' key)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    status = ExitCode.OK
    report: list[dict[str, Any]] = []
    files = find_files(args.paths, POLICY_KEY)
    if not files:
        print(f"no policy files found in {', '.join(args.paths)}", file=sys.stderr)
        status = ExitCode.CHECK_FAILED
    for path in files:
        try:
            policy = load_policy(path)
        except FairallocError as error:
            status = max(status, error.exit_code) if status != ExitCode.OK else error.exit_code
            report.append({"file": path, "valid": False, "errors": [d.to_json() for d in error.diagnostics]})
            if args.format == "text":
                report_error(error, args.error_format)
            continue
        report.append({"file": path, "valid": True, "id": policy.id, "version": policy.version, "digest": policy.digest})
        if args.format == "text":
            print(f"ok  {path}  {policy.ref}  {policy.digest}")
    if args.format == "json":
        sys.stdout.write(dump_json(report))
    return int(status)
