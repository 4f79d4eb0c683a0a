"""Errors as values: every stage reports problems as :class:`Diagnostic` records.

A diagnostic has a stable ``code`` (tests and tools match on it, never on wording), a human
message, an optional one-line ``hint`` saying how to fix it, and a :class:`Location` — a
``file:line:column`` into a policy or a JSON pointer into a trade document. Stages collect
diagnostics and raise one :class:`FairallocError` carrying all of them, so that a user sees every
mistake at once. The CLI maps the error's category to a documented exit code (see ``docs/cli.md``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ExitCode(enum.IntEnum):
    """Process exit statuses of the ``fairalloc`` command. Documented in ``docs/cli.md``."""

    OK = 0
    CHECK_FAILED = 1  # a check ran and found something: fmt --check, policy tests, verify, replay
    USAGE = 2  # bad command-line arguments
    INVALID_POLICY = 3  # the policy file is not a valid policy
    INVALID_INPUT = 4  # a trade document or other input file is malformed
    REFUSED = 5  # input is well-formed but a control refuses it (pre-trade, timing, coverage)
    LEDGER = 6  # the ledger refused a write or is unreachable
    IO = 7  # a file could not be read or written
    MISSING_EXTRA = 69  # the command needs an optional extra that is not installed (sysexits EX_UNAVAILABLE)
    INTERNAL = 70  # a defect in fairalloc itself


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a position in a text file, a JSON pointer into a document, or both."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    pointer: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        text = ":".join(parts)
        if self.pointer is not None:
            text = f"{text}#{self.pointer}" if text else f"#{self.pointer}"
        return text


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found by a stage: stable code, message, location, fix hint."""

    code: str
    message: str
    location: Location = field(default_factory=Location)
    hint: str | None = None

    def render(self) -> str:
        where = str(self.location)
        head = f"{where}: " if where else ""
        text = f"{head}error[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "pointer": loc.pointer,
        }


class FairallocError(Exception):
    """Raised by a stage with every diagnostic it collected. ``exit_code`` tells the CLI's status."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic) -> None:
        self.diagnostics: list[Diagnostic] = (
            [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        )
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]


class PolicyError(FairallocError):
    """The policy file is not a valid policy (structure, expressions, names, types, semantics)."""

    exit_code = ExitCode.INVALID_POLICY


class InputError(FairallocError):
    """A trade document or another input file is malformed."""

    exit_code = ExitCode.INVALID_INPUT


class RefusedError(FairallocError):
    """The input is well-formed but a control refuses it (timing, totals, policy coverage)."""

    exit_code = ExitCode.REFUSED


class LedgerError(FairallocError):
    """The ledger refused a write, found a conflict, or could not be reached."""

    exit_code = ExitCode.LEDGER


class FileAccessError(FairallocError):
    """A file could not be read or written."""

    exit_code = ExitCode.IO


def pointer(parts: tuple[int | str, ...] | list[int | str]) -> str:
    """RFC 6901 JSON pointer for a path (the ``pointer`` of a :class:`Location` in a JSON document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
