"""Static types of the expression language: what the checker assigns to every node.

A :class:`Type` is an immutable value: a :class:`Kind`, an element type for lists, and a
``nullable`` flag. ``Type.NUMBER`` is a number that is never null; ``Type.NUMBER.or_null()`` is
one that may be (``order.limit_price``). ``Type.NULL`` is the type of the literal ``null``;
``Type.ANY`` switches checking off for a value (every operation accepts it, and the compiled code
checks it at run time instead).

Nullability is enforced at two places only: the literal ``null`` may not reach arithmetic,
ordering, ``and``/``or``/``not`` or a function that needs a value; and an expression whose type
may be null is not accepted where the policy expects a non-null type. A nullable *field* may be
used in arithmetic or comparisons: if it holds null at run time, evaluation raises
``expr-null`` with the location of the operation.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import ClassVar

import msgspec
import msgspec.structs


class Kind(enum.Enum):
    """The shape of a value, without nullability."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    NULL = "null"
    ANY = "any"
    LIST = "list"


ORDERED_KINDS: frozenset[Kind] = frozenset({Kind.NUMBER, Kind.STRING, Kind.DATE, Kind.TIMESTAMP})


class Type(msgspec.Struct, frozen=True):
    """A static type. Build list types with :meth:`list_of`, nullable ones with :meth:`or_null`."""

    kind: Kind
    element: Type | None = None
    nullable: bool = False

    NUMBER: ClassVar[Type]
    STRING: ClassVar[Type]
    BOOLEAN: ClassVar[Type]
    DATE: ClassVar[Type]
    TIMESTAMP: ClassVar[Type]
    NULL: ClassVar[Type]
    ANY: ClassVar[Type]

    @staticmethod
    def list_of(element: Type) -> Type:
        """The type of a list whose items all have type ``element``."""
        return Type(Kind.LIST, element=element)

    @staticmethod
    def from_name(name: str) -> Type:
        """The type spelled ``name`` as :meth:`__str__` prints it; ValueError if none is.

        ``"number"``, ``"string"``, ``"boolean"``, ``"date"``, ``"timestamp"``, ``"any"``,
        ``"list of T"`` (``"list of (T or null)"`` if the items may be null), and ``"T or null"``
        for any of these (a policy's attribute declarations
        can be read with it): ``Type.from_name(str(t)) == t`` for every type but ``NULL``.
        """
        text = " ".join(name.split())
        if text.endswith(" or null"):
            return Type.from_name(text[: -len(" or null")]).or_null()
        if text.startswith("list of "):
            element = text[len("list of ") :]
            if element.startswith("(") and element.endswith(")"):
                element = element[1:-1]
            return Type.list_of(Type.from_name(element))
        named = {t.kind.value: t for t in (Type.NUMBER, Type.STRING, Type.BOOLEAN, Type.DATE, Type.TIMESTAMP, Type.ANY)}
        if text not in named:
            raise ValueError(f"unknown type {name!r}; types are {', '.join(named)}, 'list of T' and 'T or null'")
        return named[text]

    def or_null(self) -> Type:
        """The same type, but the value may also be null."""
        return self if self.nullable else msgspec.structs.replace(self, nullable=True)

    def non_null(self) -> Type:
        """The same type with null excluded (``Type.NULL`` stays ``Type.NULL``)."""
        if self.kind is Kind.NULL or not self.nullable:
            return self
        return msgspec.structs.replace(self, nullable=False)

    @property
    def is_any(self) -> bool:
        return self.kind is Kind.ANY

    @property
    def is_null(self) -> bool:
        return self.kind is Kind.NULL

    def __str__(self) -> str:
        if self.kind is Kind.LIST:
            assert self.element is not None
            element = str(self.element)
            text = f"list of ({element})" if element.endswith(" or null") else f"list of {element}"
        else:
            text = self.kind.value
        if self.nullable and self.kind not in (Kind.NULL, Kind.ANY):
            text = f"{text} or null"
        return text


Type.NUMBER = Type(Kind.NUMBER)
Type.STRING = Type(Kind.STRING)
Type.BOOLEAN = Type(Kind.BOOLEAN)
Type.DATE = Type(Kind.DATE)
Type.TIMESTAMP = Type(Kind.TIMESTAMP)
Type.NULL = Type(Kind.NULL, nullable=True)
Type.ANY = Type(Kind.ANY, nullable=True)


def is_kind(actual: Type, kind: Kind) -> bool:
    """True if ``actual`` may be used where a value of ``kind`` is needed (ANY always may)."""
    return actual.is_any or actual.kind is kind


def assignable(actual: Type, expected: Type) -> bool:
    """True if a value of type ``actual`` is acceptable where ``expected`` is required.

    Null must be allowed by ``expected``; list element types must be assignable in turn.
    """
    if actual.is_any or expected.is_any:
        return True
    if actual.nullable and not expected.nullable:
        return False
    if actual.is_null:
        return True
    if actual.kind is not expected.kind:
        return False
    if actual.kind is Kind.LIST:
        assert actual.element is not None and expected.element is not None
        return assignable(actual.element, expected.element)
    return True


def join(left: Type, right: Type) -> Type | None:
    """The least type holding values of both ``left`` and ``right``, or None if there is none.

    Used for list items, ``coalesce`` and ``min``/``max`` arguments.
    """
    if left.is_any or right.is_any:
        return Type.ANY
    if left.is_null:
        return right.or_null()
    if right.is_null:
        return left.or_null()
    if left.kind is not right.kind:
        return None
    nullable = left.nullable or right.nullable
    if left.kind is Kind.LIST:
        assert left.element is not None and right.element is not None
        element = join(left.element, right.element)
        if element is None:
            return None
        return Type(Kind.LIST, element=element, nullable=nullable)
    return Type(left.kind, nullable=nullable)


def equatable(left: Type, right: Type) -> bool:
    """True if ``==``/``!=`` between the two types can ever be meaningful (null with anything)."""
    return join(left, right) is not None


def orderable(left: Type, right: Type) -> bool:
    """True if ``<``/``<=``/``>``/``>=`` applies: two numbers, strings, dates or timestamps."""
    if left.is_null or right.is_null:
        return False
    if left.is_any or right.is_any:
        return (left.is_any or left.kind in ORDERED_KINDS) and (
            right.is_any or right.kind in ORDERED_KINDS
        )
    return left.kind is right.kind and left.kind in ORDERED_KINDS


def scalar_type(value: object) -> Type | None:
    """The type of a boolean, number or string value; None for any other value.

    The one place that says which Python values are the language's scalars: literals in
    a policy and attribute values in a trade are typed by it (``True`` is a boolean, not a number).
    """
    if isinstance(value, bool):
        return Type.BOOLEAN
    if isinstance(value, (int, Decimal)):
        return Type.NUMBER
    if isinstance(value, str):
        return Type.STRING
    return None
