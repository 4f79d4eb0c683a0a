"""Maintained FIX libraries as the judges of every message the adapter reads or writes.

simplefix parses the bytes independently of the adapter; jetblack-fixparser decodes them strictly
against QuickFIX's FIX 4.4 data dictionary (``FIX44.xml``, installed with the quickfix package
under ``<prefix>/share/quickfix``): required fields, field types and repeating groups in the
dictionary's order; QuickFIX itself parses each message with the same dictionary (BodyLength and
CheckSum checked) and validates it (required fields, enumerated values, groups).
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import quickfix
import simplefix
from jetblack_fixparser import FixMessage, load_quickfix_protocol
from jetblack_fixparser.meta_data import ProtocolMetaData

DICTIONARY = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    """A ledger whose first admin is the OS user running the tests, who is also a trader and a CCO
    (everything here runs as that one authenticated user), with the equity policy published."""
    from fairalloc import load_policy
    from fairalloc.ledger import workflow
    from fairalloc.ledger.store import Ledger

    from ..conftest import POLICIES

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url, create=True) as ledger:
        me = ledger.actor()
        workflow.initialise(ledger, me, me.name)
        for role in ("trader", "cco"):
            workflow.set_role(ledger, me, me.name, role, grant=True)
        workflow.publish_policy(ledger, me, load_policy(POLICIES / "us-equity-pro-rata.yaml"))
    return url


@cache
def protocol() -> ProtocolMetaData:
    assert DICTIONARY.is_file(), f"{DICTIONARY} is missing: install the dev extra (quickfix's dictionary)"
    return load_quickfix_protocol(DICTIONARY)


@cache
def quickfix_dictionary() -> quickfix.DataDictionary:
    return quickfix.DataDictionary(str(DICTIONARY))


def quickfix_validate(message: bytes) -> None:
    """QuickFIX's parse (integrity) and validation against the FIX 4.4 dictionary; raises if invalid."""
    dictionary = quickfix_dictionary()
    dictionary.validate(quickfix.Message(message.decode(), dictionary, True))


def simplefix_pairs(message: bytes) -> list[tuple[int, str]]:
    """The message's fields as simplefix parses them (BodyLength and CheckSum included)."""
    parser = simplefix.FixParser()
    parser.append_buffer(message)
    parsed = parser.get_message()
    assert parsed is not None, f"simplefix found no complete message in {message!r}"
    assert parser.get_message() is None, "more than one message"
    return [(int(tag), value.decode()) for tag, value in parsed.pairs]


def dictionary_decode(message: bytes) -> dict[str, Any]:
    """The message decoded and validated against the FIX 4.4 dictionary (strict: required fields
    and group order), with its CheckSum verified by the library."""
    decoded = FixMessage.decode(protocol(), message, strict=True, validate=True)
    result: dict[str, Any] = decoded.message
    return result


def assert_valid(message: bytes) -> dict[str, Any]:
    """Both libraries accept ``message``; BodyLength and CheckSum are recomputed here too."""
    pairs = simplefix_pairs(message)
    assert pairs[0] == (8, "FIX.4.4") and pairs[1][0] == 9 and pairs[-1][0] == 10
    start = message.index(b"\x01", message.index(b"\x019=") + 1) + 1
    end = message.rindex(b"\x0110=") + 1
    assert int(pairs[1][1]) == end - start
    assert int(pairs[-1][1]) == sum(message[:end]) % 256
    quickfix_validate(message)
    return dictionary_decode(message)
