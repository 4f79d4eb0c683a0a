"""The built-in SHA-256 that policy digests use is hashlib's function of the same bytes."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from fairalloc.digest import sha256_hex


@given(st.text())
def test_sha256_hex_is_hashlibs(text: str) -> None:
    assert sha256_hex(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_known_digest() -> None:
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
