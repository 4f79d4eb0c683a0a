"""The policies a service allocates under: a folder of policy files, and the ledger's registry.

A *bundle* is every file under the ``--policies`` folder whose YAML has a top-level ``fairalloc:``
key (other YAML — policy tests, CI files — is left alone). Each is validated and compiled when it
appears or changes; the folder is polled by file modification times, so a ``git pull`` or a
config-management run takes effect without a restart. A file that no longer compiles is logged
and its last good version kept: a typo in production must not stop allocation. Every version
loaded is logged with its digest, the identity by which the allocation documents name it.

A reference is ``ID`` (the highest version of that id in the bundle, else the latest published
in the ledger) or ``ID@VERSION`` (that version exactly, from the bundle or, failing that, the
ledger's registry, its recorded source recompiled and its digest checked).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from fairalloc import policy_from_text
from fairalloc.errors import Diagnostic, FairallocError, FileAccessError, InputError, Location
from fairalloc.plan import Policy
from fairalloc.service.problems import Problem, problem

log = logging.getLogger("fairalloc.service.policies")

Snapshot = dict[Path, tuple[int, int]]
RegistryLookup = Callable[[str], Policy]


@dataclass(frozen=True, slots=True)
class Loaded:
    """One policy version of the bundle and the file it came from."""

    policy: Policy
    file: Path


class Bundle:
    """The policy versions of a folder, reloaded by :meth:`refresh` when its files change."""

    def __init__(self, folder: Path | None) -> None:
        if folder is not None and not folder.is_dir():
            raise FileAccessError(Diagnostic("policies-not-a-folder", f"{folder} is not a folder",
                                             Location(file=str(folder)),
                                             "--policies names the folder of policy files"))
        self.folder = folder
        self._snapshot: Snapshot = {}
        self._by_file: dict[Path, Loaded] = {}
        self._versions: dict[tuple[str, int], Loaded] = {}
        self._lock = threading.Lock()
        self.errors: dict[Path, str] = {}

    @property
    def versions(self) -> dict[tuple[str, int], Loaded]:
        """``(id, version)`` to the loaded policy (a snapshot: reloading swaps the whole mapping)."""
        return self._versions

    def refresh(self) -> bool:
        """Reload the files that changed since the last call; True if anything changed."""
        if self.folder is None:
            return False
        with self._lock:
            now = _scan(self.folder)
            if now == self._snapshot:
                return False
            for path in set(self._by_file) - set(now):
                log.info("policy file %s removed", path)
                del self._by_file[path]
                self.errors.pop(path, None)
            for path, stamp in now.items():
                if self._snapshot.get(path) != stamp:
                    self._load(path)
            self._snapshot = now
            self._versions = _index(self._by_file)
            return True

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text("utf-8")
            if not _is_policy(text):
                self._by_file.pop(path, None)
                return
            policy = policy_from_text(text, str(path))
        except (OSError, UnicodeDecodeError) as error:
            self.errors[path] = str(error)
            log.error("policy file %s unreadable: %s; keeping its last good version", path, error)
            return
        except FairallocError as error:
            self.errors[path] = str(error)
            log.error("policy file %s does not compile; keeping its last good version:\n%s", path, error)
            return
        self.errors.pop(path, None)
        self._by_file[path] = Loaded(policy, path)
        log.info("policy %s loaded from %s: %s", policy.ref, path, policy.digest)

    def resolve(self, ref: str, registry: RegistryLookup | None) -> Policy:
        """The policy a reference names (see the module docstring), or a 404 problem."""
        policy_id, at, version_text = ref.partition("@")
        if not policy_id or (at and not version_text.isdigit()):
            raise Problem.of(InputError(Diagnostic(
                "policy-reference", f"{ref!r} is not a policy reference", Location(pointer="/policy"),
                "write ID or ID@VERSION, e.g. us-equity-pro-rata@3")))
        versions = self._versions
        if at:
            found = versions.get((policy_id, int(version_text)))
            if found is not None:
                return found.policy
        else:
            mine = [loaded for (pid, _), loaded in versions.items() if pid == policy_id]
            if mine:
                return max(mine, key=lambda loaded: loaded.policy.version).policy
        if registry is not None:
            return registry(ref)
        raise problem(404, "policy-unknown", f"no policy {ref!r} in the policy bundle",
                      pointer="/policy", hint="the service serves the policy files under its --policies folder")


def _is_policy(text: str) -> bool:
    """Whether a YAML text is a fairalloc policy: a mapping with a top-level ``fairalloc`` key.

    Only the top-level keys are looked at (the first document's), so this is cheap and does not
    need the text to be a valid policy — an invalid policy is reported, not ignored."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return "\nfairalloc:" in "\n" + text
    if not isinstance(node, yaml.MappingNode):
        return False
    return any(isinstance(key, yaml.ScalarNode) and key.value == "fairalloc" for key, _ in node.value)


def _scan(folder: Path) -> Snapshot:
    stamps: Snapshot = {}
    for pattern in ("*.yaml", "*.yml"):
        for path in folder.rglob(pattern):
            try:
                info = path.stat()
            except OSError:
                continue
            stamps[path] = (info.st_mtime_ns, info.st_size)
    return stamps


def _index(by_file: dict[Path, Loaded]) -> dict[tuple[str, int], Loaded]:
    """One entry per (id, version); the same version in two files with different content is
    ambiguous, so neither is served (and that is logged)."""
    index: dict[tuple[str, int], Loaded] = {}
    clashing: set[tuple[str, int]] = set()
    for path in sorted(by_file):
        loaded = by_file[path]
        key = (loaded.policy.id, loaded.policy.version)
        other = index.get(key)
        if other is not None and other.policy.digest != loaded.policy.digest:
            log.error("policy %s@%s is in %s and %s with different content; serving neither",
                      *key, other.file, path)
            clashing.add(key)
        index.setdefault(key, loaded)
    for key in clashing:
        del index[key]
    return index
