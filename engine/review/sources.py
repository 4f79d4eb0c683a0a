"""Where a policy version comes from: a file, or a file at a git revision (``REV:path``).

A source is named the way a reviewer would type it: ``policies/x.yaml`` (a file in the working
tree) or ``main:policies/x.yaml`` / ``HEAD~1:policies/x.yaml`` (that path at that revision, read
with ``git show``, so the path is relative to the repository root unless written ``REV:./path``).
An existing file always wins over the revision reading, so a file whose name contains a colon
still works. Errors are located diagnostics with stable codes (``source-not-found``,
``git-unavailable``, ``git-show-failed``); the policy itself is validated by the engine as usual.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from engine import policy_from_text
from engine.errors import Diagnostic, FileAccessError, Location
from engine.load import read_text
from engine.plan import Policy


@dataclass(frozen=True, slots=True)
class PolicySource:
    """The text of one policy version and the name it is reported under."""

    spec: str
    text: str
    kind: str  # 'file' | 'git'


def _git_show(spec: str) -> str:
    revision, _, path = spec.partition(":")
    try:
        completed = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True,
                                   encoding="utf-8", check=False)
    except FileNotFoundError:
        raise FileAccessError(Diagnostic("git-unavailable", f"cannot read {spec}: git is not installed",
                                         Location(spec))) from None
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "git show failed"
        raise FileAccessError(Diagnostic(
            "git-show-failed", f"cannot read {path} at revision {revision}: {reason}", Location(spec),
            "write REV:path with the path from the repository root, or REV:./path relative to here"))
    return completed.stdout


def read_source(spec: str) -> PolicySource:
    """Read the policy text named by ``spec`` (a file path or ``REV:path``)."""
    if os.path.exists(spec) or ":" not in spec:
        return PolicySource(spec, read_text(spec), "file")
    revision, _, path = spec.partition(":")
    if not revision or not path:
        raise FileAccessError(Diagnostic("source-not-found", f"no such file: {spec}", Location(spec),
                                         "name a policy file, or REV:path for a file at a git revision"))
    return PolicySource(spec, _git_show(spec), "git")


def load_source(spec: str) -> Policy:
    """Read and compile the policy version named by ``spec``; errors are located at ``spec``."""
    source = read_source(spec)
    return policy_from_text(source.text, source.spec)
