"""Scope: roots in fixed order, built-in fields, declared attributes and their validation."""

from __future__ import annotations

import pytest

from fairalloc.expressions import ROOTS, Scope, Type


def test_roots_are_fixed_and_ordered() -> None:
    assert ROOTS == ("order", "security", "statement", "fill", "account", "allocation")


def test_attributes_join_builtin_fields() -> None:
    scope = Scope.build({"account"}, {"type": Type.STRING}, {"asset_class": Type.STRING})
    assert scope.roots == frozenset({"account"})
    assert scope.field_type("account", "type") == Type.STRING
    assert scope.field_type("account", "intended") == Type.NUMBER
    assert scope.field_type("account", "limit_price") == Type.NUMBER.or_null()
    assert scope.field_type("account", "received_at") == Type.TIMESTAMP.or_null()
    assert scope.field_type("security", "asset_class") == Type.STRING
    assert scope.field_type("order", "limit_price") == Type.NUMBER.or_null()
    assert scope.field_type("fill", "ratio") == Type.NUMBER
    assert scope.field_type("statement", "accounts") == Type.NUMBER
    assert scope.field_type("account", "nope") is None


@pytest.mark.parametrize(
    ("roots", "account", "message"),
    [
        ({"acount"}, {}, "unknown root"),
        ({"account"}, {"intended": Type.NUMBER}, "shadow"),
        ({"account"}, {"id": Type.STRING}, "shadow"),
        ({"account"}, {"_secret": Type.STRING}, "not a valid name"),
        ({"account"}, {"__class__": Type.STRING}, "not a valid name"),
        ({"account"}, {"has space": Type.STRING}, "not a valid name"),
        ({"account"}, {"in": Type.STRING}, "reserved word"),
        ({"account"}, {"kind": "string"}, "must have a Type"),
        ({"account"}, {"kind": Type.NULL}, "cannot have type null"),
    ],
)
def test_bad_scopes_raise_value_error(roots: set[str], account: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scope.build(roots, account)  # type: ignore[arg-type]


def test_security_attribute_may_not_shadow_symbol() -> None:
    with pytest.raises(ValueError, match="shadow"):
        Scope.build(ROOTS, {}, {"symbol": Type.STRING})


def test_scope_is_immutable() -> None:
    scope = Scope.build(ROOTS, {"type": Type.STRING})
    with pytest.raises(TypeError):
        scope.fields["account"]["type"] = Type.NUMBER  # type: ignore[index]
