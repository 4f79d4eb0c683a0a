"""``fairalloc validate FILE...``: check policy files, reporting every problem with its location."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fairalloc import load_policy
from fairalloc.cli._io import dump_json, report_error
from fairalloc.errors import ExitCode, FairallocError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check policy files", description="Validate policy files: structure, expressions, semantics."
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy YAML files")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    status = ExitCode.OK
    report: list[dict[str, Any]] = []
    for path in args.files:
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
