"""The chain's canonical form and hash: stable, covering every field, refusing floats."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairalloc.ledger.chain import GENESIS, Event, canonical_json, event_canonical, link_hash, recompute


def test_canonical_form_is_sorted_compact_json() -> None:
    payload = canonical_json({"b": [1, "2"], "a": Decimal("99.950")})
    text = event_canonical(7, "2026-03-02T14:30:00.000000Z", "pm", "k", "O-1", None, "t", payload)
    assert text == json.dumps(
        {"seq": 7, "recorded_at": "2026-03-02T14:30:00.000000Z", "actor": "pm", "kind": "k",
         "order_id": "O-1", "key": None, "topic": "t", "payload": {"a": "99.950", "b": [1, "2"]}},
        sort_keys=True, separators=(",", ":"),
    )


def test_attribute_floats_have_a_stable_text() -> None:
    assert canonical_json({"aum": 1.1e6, "w": 0.1}) == '{"aum":1100000.0,"w":0.1}'


@pytest.mark.parametrize("field", ["seq", "recorded_at", "actor", "kind", "order_id", "key",
                                   "topic", "payload", "prev_hash"])
def test_every_field_is_covered_by_the_hash(field: str) -> None:
    base = Event(1, "2026-01-01T00:00:00.000000Z", "a", "k", "o", "key", "t", '{"x":1}', GENESIS, "")
    changed: dict[str, object] = {"seq": 2, "payload": '{"x":2}', "prev_hash": "1" * 64}
    altered = base._replace(**{field: changed.get(field, "changed")})  # type: ignore[arg-type]
    assert recompute(altered) != recompute(base)


def test_link_hash_is_sha256_of_prev_and_canonical() -> None:
    import hashlib

    assert link_hash(GENESIS, "{}") == hashlib.sha256(f"{GENESIS}\n{{}}".encode()).hexdigest()


_NAME = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(actor=_NAME, kind=_NAME, order_id=st.none() | _NAME, key=st.none() | _NAME,
       topic=st.none() | _NAME, source=st.none() | st.sampled_from(["os-user", "database-role", "token"]),
       service=st.none() | _NAME, on_behalf_of=st.none() | _NAME, seq=st.integers(1, 10**12))
def test_the_canonical_form_is_json_with_sorted_keys_and_the_authentication_fields_when_set(
        actor: str, kind: str, order_id: str | None, key: str | None, topic: str | None,
        source: str | None, service: str | None, on_behalf_of: str | None, seq: int) -> None:
    text = event_canonical(seq, "2026-03-02T14:30:00.000000Z", actor, kind, order_id, key, topic,
                           '{"a":1}', source, service, on_behalf_of)
    expected: dict[str, object] = {"seq": seq, "recorded_at": "2026-03-02T14:30:00.000000Z",
                                   "actor": actor, "kind": kind, "order_id": order_id, "key": key,
                                   "topic": topic, "payload": {"a": 1}}
    for name, value in (("source", source), ("service", service), ("on_behalf_of", on_behalf_of)):
        if value is not None:
            expected[name] = value
    assert text == json.dumps(expected, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("field", ["source", "service", "on_behalf_of"])
def test_the_authentication_fields_are_covered_by_the_hash(field: str) -> None:
    base = Event(1, "2026-01-01T00:00:00.000000Z", "a", "k", "o", "key", "t", '{"x":1}', GENESIS, "",
                 "token", "svc", "pam")
    assert recompute(base._replace(**{field: "changed"})) != recompute(base)  # type: ignore[arg-type]
    assert recompute(base._replace(**{field: None})) != recompute(base)  # type: ignore[arg-type]


def _standard(value: object) -> str:
    """The canonical form as the standard library writes it (what every stored hash covers)."""
    def default(item: object) -> object:
        if isinstance(item, Decimal):
            return format(item, "f")
        raise TypeError(f"{type(item).__name__} is not JSON-serialisable in a ledger payload")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=default)


_ASCII = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=12)
_ANY_TEXT = st.text(alphabet=st.characters() | st.sampled_from(["\ud800", "\udfff", "\udc80"]),
                    max_size=8)  # lone surrogates too
_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-10, 10)
            | st.floats(allow_nan=True, allow_infinity=True)
            | st.decimals(allow_nan=False, allow_infinity=False) | _ASCII
            | st.sampled_from(["F-1", "99.95", "2026-03-02T14:31:05Z", "a\"b", "x\\y", "\x7f", "é"])
            | _ANY_TEXT)
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda inner: (st.lists(inner, max_size=5) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(_ASCII | _ANY_TEXT, inner, max_size=5)
                   | st.dictionaries(st.integers(0, 9), inner, max_size=2)),
    max_leaves=25,
)


@given(_JSON_LIKE)
def test_canonical_json_is_byte_for_byte_the_standard_encoders_text(value: object) -> None:
    """Whatever path writes it, the canonical text is the one every stored hash was made from."""
    try:
        expected: str | type[Exception] = _standard(value)
    except (TypeError, ValueError) as error:
        expected = type(error)
    try:
        got: str | type[Exception] = canonical_json(value)
    except (TypeError, ValueError) as error:
        got = type(error)
    assert got == expected


def test_canonical_json_of_types_outside_json_is_refused_as_before() -> None:
    import datetime
    import uuid
    for value in ({"at": datetime.date(2026, 3, 2)}, {"id": uuid.UUID(int=1)}, {"b": b"x"},
                  {"s": {1, 2}}):
        with pytest.raises(TypeError):
            canonical_json(value)
    assert canonical_json({"t": (1, "a"), "d": Decimal("1E+2")}) == '{"d":"100","t":[1,"a"]}'
