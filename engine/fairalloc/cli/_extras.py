"""Which commands need an optional extra, and the one check that it is installed.

``pip install fairalloc`` brings only what ``validate``, ``fmt``, ``test``, ``eval``, ``allocate``
and ``schema`` need; the ledger, PostgreSQL, the forensic review and the other subsystems are
extras (``pyproject.toml``). A command whose extra is missing must say which one to install, not
end in an ``ImportError``: :func:`require_extras` reads the installed distribution's metadata,
so the list of what an extra brings is written once, in ``pyproject.toml``, and this module
only maps commands to extras.
"""

from __future__ import annotations

import re

from fairalloc.errors import Diagnostic, ExitCode, FairallocError

DISTRIBUTION = "fairalloc"

COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "policy": ("ledger",),
    "order": ("ledger",),
    "replay": ("ledger",),
    "ledger": ("ledger",),
    "review": ("review",),
    "simulate": ("review",),
    "serve": ("service",),
}
"""The extras each command needs before its module can be imported; a core command is absent."""

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


class MissingExtraError(FairallocError):
    """A command needs an optional extra of the distribution that is not installed."""

    exit_code = ExitCode.MISSING_EXTRA


Declared = dict[str, list[tuple[str, tuple[str, ...]]]]
"""Each extra's requirements as (distribution, the extras of it asked for)."""


def declared_extras(requirements: list[str]) -> Declared:
    """The extras of ``Requires-Dist`` lines (``sqlalchemy>=2; extra == 'ledger'``); the lines
    without an extra marker are the core's and are left out."""
    declared: Declared = {}
    for requirement in requirements:
        text, _, marker = requirement.partition(";")
        extra, named = _EXTRA_MARKER.search(marker), _NAME.match(text)
        if extra is not None and named is not None:
            nested = tuple(item.strip() for item in (named.group(2) or "").split(",") if item.strip())
            declared.setdefault(extra.group(1), []).append((named.group(1), nested))
    return declared


def _installed_declaration() -> Declared | None:
    """The installed distribution's extras; None without installed metadata (a bare source tree
    on ``sys.path``), where nothing can be checked and a failing import reports itself."""
    from importlib import metadata  # read only by a command that needs an extra: it costs start-up

    try:
        return declared_extras(metadata.requires(DISTRIBUTION) or [])
    except metadata.PackageNotFoundError:
        return None


def require_extras(feature: str, *extras: str) -> None:
    """Raise :class:`MissingExtraError` naming ``pip install 'fairalloc[...]'`` when a distribution
    one of ``extras`` requires is not installed; ``feature`` says what needs it, for the message."""
    if not extras:
        return
    declared = _installed_declaration()
    if declared is None:
        return
    lacking = {extra: names for extra in extras if (names := missing(declared, extra))}
    if not lacking:
        return
    absent = sorted({name for names in lacking.values() for name in names})
    raise MissingExtraError(Diagnostic(
        "missing-extra",
        f"{feature} needs the optional {'extras' if len(lacking) > 1 else 'extra'} "
        f"{', '.join(repr(extra) for extra in lacking)}, not installed (missing: {', '.join(absent)})",
        hint=f"pip install '{DISTRIBUTION}[{','.join(lacking)}]'",
    ))


def missing(declared: Declared, extra: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Distributions ``extra`` requires (following ``fairalloc[...]`` references) that are not installed."""
    from importlib import metadata

    absent: list[str] = []
    for name, nested in declared.get(extra, []):
        if name == DISTRIBUTION:
            for inner in nested:
                if inner not in seen:
                    absent.extend(missing(declared, inner, seen | {extra}))
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    return absent


def extra_providing(module: str | None) -> str | None:
    """The smallest extra that brings the distribution of the top-level ``module``, if any: a
    command can need an extra for one option only (the ledger on PostgreSQL needs
    ``fairalloc[postgres]``), and the import failing there must still name what to install."""
    declared = _installed_declaration()
    if not module or declared is None:
        return None
    wanted = _normal(module.partition(".")[0])
    providing = [(len(requirements), extra) for extra, requirements in declared.items()
                 if any(_normal(name) == wanted for name, _ in requirements)]
    return min(providing)[1] if providing else None


def missing_module_error(feature: str, module: str, extra: str) -> MissingExtraError:
    """The refusal when ``feature`` imported ``module``, which ``extra`` brings, and it was not there."""
    return MissingExtraError(Diagnostic(
        "missing-extra", f"{feature} needs the optional extra '{extra}', not installed (missing: {module})",
        hint=f"pip install '{DISTRIBUTION}[{extra}]'",
    ))


def _normal(name: str) -> str:
    """A distribution or module name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
