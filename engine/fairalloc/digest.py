"""SHA-256 of a text, without importing :mod:`hashlib` where the interpreter has its own.

Importing ``hashlib`` loads OpenSSL's libcrypto, some 2.5 ms of a command's start-up, for the
digest of a policy's canonical form and of the expression grammar. CPython builds SHA-256 in as a
module of its own (``_sha256`` in 3.11, ``_sha2`` from 3.12): the same function of the same bytes.
Elsewhere ``hashlib``'s is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def _constructor() -> Callable[[bytes], Any]:
    for name in ("_sha256", "_sha2"):
        try:
            constructor: Callable[[bytes], Any] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    import hashlib

    return hashlib.sha256


_SHA256 = _constructor()


def sha256_hex(text: str) -> str:
    """The SHA-256 of ``text``'s UTF-8 bytes, in hexadecimal."""
    digest: str = _SHA256(text.encode("utf-8")).hexdigest()
    return digest
