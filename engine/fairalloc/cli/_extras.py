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
from importlib import metadata

from fairalloc.errors import Diagnostic, ExitCode, FairallocError

DISTRIBUTION = "fairalloc"

COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "policy": ("ledger",),
    "order": ("ledger",),
    "replay": ("ledger",),
    "ledger": ("ledger",),
    "review": ("review",),
    "simulate": ("review",),
}
"""The extras each command needs before its module can be imported; a core command is absent."""

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


class MissingExtraError(FairallocError):
    """A command needs an optional extra of the distribution that is not installed."""

    exit_code = ExitCode.MISSING_EXTRA


def require_extras(feature: str, *extras: str) -> None:
    """Raise :class:`MissingExtraError` naming ``pip install 'fairalloc[...]'`` when a distribution
    one of ``extras`` requires is not installed; ``feature`` says what needs it, for the message.

    Without installed metadata (a source tree on ``sys.path``) nothing can be checked and the
    import that follows reports itself."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return
    lacking = [extra for extra in extras if _missing(requirements, extra)]
    if not lacking:
        return
    missing = sorted({name for extra in lacking for name in _missing(requirements, extra)})
    spec = f"{DISTRIBUTION}[{','.join(lacking)}]"
    raise MissingExtraError(Diagnostic(
        "missing-extra",
        f"{feature} needs the optional {'extras' if len(lacking) > 1 else 'extra'} "
        f"{', '.join(repr(extra) for extra in lacking)}, not installed (missing: {', '.join(missing)})",
        hint=f"pip install '{spec}'",
    ))


def extra_providing(module: str | None) -> str | None:
    """The smallest extra that brings the distribution of the top-level ``module``, if any: a
    command can need an extra for one option only (the ledger on PostgreSQL needs
    ``fairalloc[postgres]``), and the import failing there must still name what to install."""
    if not module:
        return None
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    wanted = _normal(module.partition(".")[0])
    members: dict[str, set[str]] = {}
    for requirement in requirements:
        requirement_text, _, marker = requirement.partition(";")
        extra, named = _EXTRA_MARKER.search(marker), _NAME.match(requirement_text)
        if extra is not None and named is not None:
            members.setdefault(extra.group(1), set()).add(_normal(named.group(1)))
    providing = [(len(names), extra) for extra, names in members.items() if wanted in names]
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


def _missing(requirements: list[str], extra: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Distributions ``extra`` requires (following ``fairalloc[...]`` references) that are not installed."""
    missing: list[str] = []
    for requirement in requirements:
        requirement_text, _, marker = requirement.partition(";")
        wanted = _EXTRA_MARKER.search(marker)
        named = _NAME.match(requirement_text)
        if wanted is None or wanted.group(1) != extra or named is None:
            continue
        name, nested = named.group(1), named.group(2)
        if name == DISTRIBUTION and nested:
            for inner in (item.strip() for item in nested.split(",")):
                if inner not in seen:
                    missing.extend(_missing(requirements, inner, seen | {extra}))
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing
