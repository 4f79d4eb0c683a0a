"""The ``fairalloc`` command's entry point, and what it reads of a command line before importing
the command line's modules.

A one-shot command (``validate``, ``allocate`` ...) runs without the cycle collector
(:func:`fairalloc.cli.main` says why). :func:`main`, the console script's and ``python -m
fairalloc``'s entry, pauses it before it imports :mod:`fairalloc.cli` too: those imports (argparse,
msgspec, the error registry and all they import) make classes, functions and tables that live to
the end, and the collector scanned them some twenty times while they were made, 2-3 ms of a small
``fairalloc allocate``. This module imports nothing but :mod:`gc` and :mod:`sys`, and the package's
``__init__`` does not import :mod:`typing`, so that the pause comes before nearly every import.
"""

from __future__ import annotations

import gc
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# Order here is the order in `fairalloc --help`; the text is the one-line help of each command.
COMMANDS: dict[str, str] = {
    "validate": "check policy files",
    "fmt": "format policy files canonically",
    "test": "run policy tests, with rule coverage",
    "eval": "evaluate an expression of the policy language",
    "allocate": "allocate a trade's fills under a policy",
    "schema": "print a JSON Schema",
    "diff": "semantic diff of two policy versions, with impact on recorded trades",
    "policy": "publish policy versions and read the registry",
    "order": "record an order's workflow in the ledger",
    "replay": "recompute recorded allocations from the ledger",
    "ledger": "the system of record: users, verify, export",
    "review": "find cherry-picking and unfair allocation patterns in allocation history",
    "simulate": "write a synthetic firm-year of allocation history (optionally with a cherry-picker)",
    "fix": "FIX 4.4: allocate orders and executions, send AllocationInstructions",
    "serve": "serve allocation and the recorded workflow over HTTP",
    "completion": "print a shell completion script (bash or zsh)",
}
_GLOBAL_WITH_VALUE = ("--error-format",)
ONE_SHOT = frozenset({"validate", "fmt", "test", "eval", "allocate", "schema"})
"""Commands that read their input, write their result and end: they run without the cycle
collector (:func:`fairalloc.cli.main`)."""


def requested_command(argv: Sequence[str]) -> tuple[str | None, bool]:
    """The subcommand named on the command line, if any (skipping the global options), and
    whether only ``--debug`` and ``--error-format`` (spelt out) come before it: then the
    top-level parser cannot print its help or name an unknown command, and the other commands
    need not be listed in it (a placeholder parser each is most of building it)."""
    skip = False
    plain = True
    for token in argv:
        if skip:
            skip = False
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return (token, plain) if token in COMMANDS else (None, False)
        elif token != "--debug" and not token.startswith("--error-format="):
            plain = False
    return None, False


def main() -> int:
    """Run the command of this process's command line (:func:`fairalloc.cli.main`)."""
    if requested_command(sys.argv[1:])[0] in ONE_SHOT:
        gc.disable()
    from fairalloc.cli import main as run

    return run()
