"""``fairalloc schema NAME``: print a shipped JSON Schema, for editors and OMS developers."""

from __future__ import annotations

import argparse
from typing import Any

from fairalloc.cli._io import write_output
from fairalloc.schema import SCHEMAS, schema_text


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "schema", help="print a JSON Schema", description="Print the JSON Schema of a policy file or a contract document."
    )
    parser.add_argument("name", choices=SCHEMAS, help="which schema")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    write_output(schema_text(args.name), args.output)
    return 0
