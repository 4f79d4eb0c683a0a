"""RFC 9457 problem details: every refusal of the service, with the CLI's code and pointer.

A :class:`~fairalloc.errors.FairallocError` becomes a problem document whose ``code`` and
``errors`` are exactly what ``fairalloc --error-format json`` prints for the same input (each
error's ``pointer`` is into the trade document, as the CLI reports it), plus the HTTP ``status``
and the ``exit_code`` the CLI would have given. The HTTP status follows from the code where the
code says more than its category (a forbidden step is 403, an unknown order 404), else from the
category (malformed input 422, a conflict with the ledger 409).
"""

from __future__ import annotations

from typing import Any

from fairalloc.errors import Diagnostic, ExitCode, FairallocError, Location

PROBLEM_TYPE = "application/problem+json"

_STATUS_BY_CODE: dict[str, int] = {
    # library codes whose HTTP meaning is narrower than their category's
    "json-syntax": 400,
    "role-required": 403,
    "review-by-requester": 403,
    "order-unknown": 404,
    "policy-not-published": 404,
    "ledger-unreachable": 503,
    "ledger-not-initialised": 503,
}

_STATUS_BY_EXIT: dict[ExitCode, int] = {
    ExitCode.INVALID_POLICY: 422,
    ExitCode.INVALID_INPUT: 422,
    ExitCode.REFUSED: 422,
    ExitCode.LEDGER: 409,
    ExitCode.IO: 500,
    ExitCode.INTERNAL: 500,
}


class Problem(Exception):
    """A refusal on its way to the client: an HTTP status, diagnostics and extra headers."""

    def __init__(self, status: int, diagnostics: list[Diagnostic], exit_code: ExitCode,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(diagnostics[0].message if diagnostics else str(status))
        self.status = status
        self.diagnostics = diagnostics
        self.exit_code = exit_code
        self.headers = headers or {}

    @property
    def code(self) -> str:
        return self.diagnostics[0].code

    @staticmethod
    def of(error: FairallocError) -> Problem:
        """The problem for a library error, its diagnostics unchanged."""
        return Problem(status_for(error), error.diagnostics, error.exit_code)

    def document(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document: RFC 9457 members first, then fairalloc's extension members."""
        first = self.diagnostics[0]
        document: dict[str, Any] = {
            "type": f"urn:fairalloc:error:{first.code}",
            "title": first.code.replace("-", " "),
            "status": self.status,
            "detail": first.message,
        }
        if instance is not None:
            document["instance"] = instance
        document["code"] = first.code
        document["pointer"] = first.location.pointer
        document["exit_code"] = int(self.exit_code)
        document["errors"] = [d.to_json() for d in self.diagnostics]
        return document


def problem(status: int, code: str, message: str, *, hint: str | None = None,
            pointer: str | None = None, exit_code: ExitCode = ExitCode.INVALID_INPUT,
            headers: dict[str, str] | None = None) -> Problem:
    """A problem raised by the service itself (authentication, limits, idempotency)."""
    return Problem(status, [Diagnostic(code, message, Location(pointer=pointer), hint)], exit_code, headers)


def status_for(error: FairallocError) -> int:
    """The HTTP status of a library error: by its first code when that is specific, else by category."""
    for diagnostic in error.diagnostics:
        if diagnostic.code in _STATUS_BY_CODE:
            return _STATUS_BY_CODE[diagnostic.code]
    return _STATUS_BY_EXIT.get(error.exit_code, 500)

