"""Frozen records compared without one of their fields.

An expression node's inferred ``type`` and a policy's source ``data`` are carried with the record
but are not part of what it is: two nodes that differ only in the type the checker gave them, or
two policies that differ only in the YAML mapping they were read from, are equal and hash alike.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class ComparedWithout(msgspec.Struct, frozen=True):
    """Equality and hash over every field but :attr:`left_out`, as a tuple in field order."""

    left_out: ClassVar[str]

    def _compared(self) -> tuple[Any, ...]:
        left_out = self.left_out
        return tuple(getattr(self, name) for name in self.__struct_fields__ if name != left_out)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())
