"""Which files a command reads when it is given folders: policies and policy test files.

``validate``, ``fmt`` and ``test`` take files or folders. A file named on the command line is read
whatever it holds. In a folder (searched recursively, hidden entries skipped, in sorted order) a
YAML file (``*.yaml``, ``*.yml``) is a policy when its top-level mapping has the key
``fairalloc`` and a policy test file when it has the key ``cases``; other YAML files — CI
configuration, editor settings — are not the command's business. The key is recognised at the
start of a line (block style, as ``fmt`` writes every policy), without parsing the file, so that a
folder of hostile or broken YAML costs one bounded scan per file; a file that is recognised is
then read and reported as if it had been named.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

POLICY_KEY = "fairalloc"
TEST_KEY = "cases"
SUFFIXES = (".yaml", ".yml")
_SCAN_LIMIT = 1 << 20  # bytes of a file searched for its key; a policy's keys come long before


def find_files(paths: Iterable[str], *keys: str) -> list[str]:
    """The files named by ``paths``: files as given, and in folders the YAML files whose top-level
    mapping has one of ``keys``."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found.extend(str(file) for file in _yaml_files(Path(path)) if _has_top_level_key(file, keys))
        else:
            found.append(path)
    return found


def _yaml_files(folder: Path) -> list[Path]:
    files: list[Path] = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        files.extend(Path(directory, name) for name in sorted(names)
                     if name.endswith(SUFFIXES) and not name.startswith("."))
    return files


def _has_top_level_key(file: Path, keys: tuple[str, ...]) -> bool:
    spellings = b"|".join(re.escape(f"{quote}{key}{quote}".encode()) for key in keys for quote in ("", '"', "'"))
    try:
        with open(file, "rb") as handle:
            head = handle.read(_SCAN_LIMIT)
    except OSError:
        return True  # unreadable: the command reports it, with its location, as for a named file
    return re.search(rb"^(?:" + spellings + rb")[ \t]*:", head, re.MULTILINE) is not None
