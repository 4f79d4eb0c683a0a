"""Static types: printing, assignability, join, equality and ordering rules."""

from __future__ import annotations

from fairalloc.expressions import Type
from fairalloc.expressions.types import assignable, equatable, join, orderable


def test_names() -> None:
    assert str(Type.NUMBER) == "number"
    assert str(Type.NUMBER.or_null()) == "number or null"
    assert str(Type.list_of(Type.STRING)) == "list of string"
    assert str(Type.NULL) == "null"
    assert str(Type.ANY) == "any"


def test_types_are_values() -> None:
    assert Type.list_of(Type.STRING) == Type.list_of(Type.STRING)
    assert Type.NUMBER.or_null().non_null() == Type.NUMBER
    assert Type.NUMBER.or_null() is not Type.NUMBER
    assert hash(Type.NUMBER.or_null()) == hash(Type.NUMBER.or_null())


def test_assignable() -> None:
    assert assignable(Type.NUMBER, Type.NUMBER)
    assert assignable(Type.NUMBER, Type.NUMBER.or_null())
    assert not assignable(Type.NUMBER.or_null(), Type.NUMBER)
    assert assignable(Type.NULL, Type.STRING.or_null())
    assert not assignable(Type.NULL, Type.STRING)
    assert not assignable(Type.STRING, Type.NUMBER)
    assert assignable(Type.ANY, Type.NUMBER) and assignable(Type.NUMBER, Type.ANY)
    assert assignable(Type.list_of(Type.NUMBER), Type.list_of(Type.NUMBER.or_null()))
    assert not assignable(Type.list_of(Type.NUMBER), Type.list_of(Type.STRING))


def test_join() -> None:
    assert join(Type.NUMBER, Type.NULL) == Type.NUMBER.or_null()
    assert join(Type.NULL, Type.STRING) == Type.STRING.or_null()
    assert join(Type.NUMBER, Type.STRING) is None
    assert join(Type.list_of(Type.NUMBER), Type.list_of(Type.NULL)) == Type.list_of(Type.NUMBER.or_null())
    assert join(Type.DATE, Type.ANY) == Type.ANY


def test_comparison_rules() -> None:
    assert equatable(Type.NUMBER, Type.NULL)
    assert not equatable(Type.DATE, Type.TIMESTAMP)
    assert orderable(Type.DATE, Type.DATE)
    assert not orderable(Type.BOOLEAN, Type.BOOLEAN)
    assert not orderable(Type.NULL, Type.NUMBER)
    assert orderable(Type.ANY, Type.STRING)
    assert not orderable(Type.ANY, Type.BOOLEAN)


def test_from_name_reads_what_str_prints() -> None:
    samples = [
        Type.NUMBER,
        Type.STRING.or_null(),
        Type.list_of(Type.STRING),
        Type.list_of(Type.NUMBER.or_null()).or_null(),
        Type.TIMESTAMP.or_null(),
        Type.ANY,
        Type.list_of(Type.ANY),
    ]
    for kind in samples:
        assert Type.from_name(str(kind)) == kind
    assert Type.from_name("  list   of  date ") == Type.list_of(Type.DATE)
    assert str(Type.list_of(Type.ANY)) == "list of any"
    assert str(Type.list_of(Type.NUMBER.or_null())) == "list of (number or null)"


def test_from_name_rejects_unknown_names() -> None:
    import pytest

    for bad in ["float", "", "list of", "null", "number or", "Number"]:
        with pytest.raises(ValueError, match="unknown type"):
            Type.from_name(bad)
