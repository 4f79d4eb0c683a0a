"""What names an expression may use at one place in a policy, and their types.

The six roots are fixed (:data:`ROOTS`, in the positional order of compiled functions).
``allocation`` is a number; the other five are records whose fields are the built-in fields
below plus, for ``account`` and ``security``, the attributes the policy declares. A
:class:`Scope` says which roots one place in the policy may use (a pre-trade condition has no
``fill`` yet) and what fields each record has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import msgspec

from .grammar import KEYWORDS
from .types import Type

ROOTS: tuple[str, ...] = ("order", "security", "statement", "fill", "account", "allocation")
"""Every root name, in the positional order of :attr:`CompiledExpression.fn`."""

VALUE_ROOTS: Mapping[str, Type] = MappingProxyType({"allocation": Type.NUMBER})
"""Roots that are a value themselves rather than a record of fields."""

BUILTIN_FIELDS: Mapping[str, Mapping[str, Type]] = MappingProxyType(
    {
        "order": MappingProxyType(
            {
                "id": Type.STRING,
                "symbol": Type.STRING,
                "side": Type.STRING,
                "quantity": Type.NUMBER,
                "trade_date": Type.DATE,
                "entered_at": Type.TIMESTAMP,
                "limit_price": Type.NUMBER.or_null(),
            }
        ),
        "security": MappingProxyType({"symbol": Type.STRING}),
        "statement": MappingProxyType(
            {
                "recorded_at": Type.TIMESTAMP,
                "recorded_by": Type.STRING,
                "total": Type.NUMBER,
                "accounts": Type.NUMBER,
            }
        ),
        "fill": MappingProxyType(
            {
                "quantity": Type.NUMBER,
                "ratio": Type.NUMBER,
                "average_price": Type.NUMBER.or_null(),  # null while the order has no fills
                "count": Type.NUMBER,
                "first_at": Type.TIMESTAMP.or_null(),
                "last_at": Type.TIMESTAMP.or_null(),
            }
        ),
        "account": MappingProxyType(
            {
                "id": Type.STRING,
                "intended": Type.NUMBER,
                "limit_price": Type.NUMBER.or_null(),
                "received_at": Type.TIMESTAMP.or_null(),
            }
        ),
    }
)
"""The fields every record root has, whatever the policy declares."""

_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class Scope(msgspec.Struct, frozen=True):
    """The roots allowed at one place and the fields of every record root (allowed or not)."""

    roots: frozenset[str]
    fields: Mapping[str, Mapping[str, Type]]

    @staticmethod
    def build(
        roots: Iterable[str],
        account_attributes: Mapping[str, Type] | None = None,
        security_attributes: Mapping[str, Type] | None = None,
    ) -> Scope:
        """Make a scope; raise ValueError for an unknown root or a bad or shadowing attribute.

        Declared attributes join the built-in fields of ``account`` and ``security``. An
        attribute may not reuse a built-in field's name, and must be spelled like a name of the
        language (a letter, then letters, digits or underscores).
        """
        allowed = frozenset(roots)
        unknown = sorted(allowed - set(ROOTS))
        if unknown:
            raise ValueError(f"unknown root(s) {', '.join(unknown)}; roots are {', '.join(ROOTS)}")
        fields = dict(BUILTIN_FIELDS)
        fields["account"] = _extend("account", account_attributes or {})
        fields["security"] = _extend("security", security_attributes or {})
        return Scope(allowed, MappingProxyType(fields))

    def field_type(self, root: str, name: str) -> Type | None:
        """The type of ``root.name``, or None if the record has no such field."""
        return self.fields.get(root, {}).get(name)


def _extend(root: str, attributes: Mapping[str, Type]) -> Mapping[str, Type]:
    builtin = BUILTIN_FIELDS[root]
    merged = dict(builtin)
    for name, kind in attributes.items():
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name):
            raise ValueError(f"{root} attribute name {name!r} is not a valid name")
        if name in KEYWORDS:
            raise ValueError(f"{root} attribute name '{name}' is a reserved word")
        if name in builtin:
            raise ValueError(f"{root} attribute '{name}' would shadow the built-in field '{root}.{name}'")
        if not isinstance(kind, Type):
            raise ValueError(f"{root} attribute '{name}' must have a Type, got {kind!r}")
        if kind.is_null:
            raise ValueError(f"{root} attribute '{name}' cannot have type null; use T.or_null()")
        merged[name] = kind
    return MappingProxyType(merged)
