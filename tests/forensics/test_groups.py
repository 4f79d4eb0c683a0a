"""The favoured-group expression: parsed by hand, never evaluated by Python."""

from __future__ import annotations

import pytest

from fairalloc.errors import InputError
from fairalloc.forensics import groups

TABLE: dict[str, list[str | None]] = {
    "fee_basis": ["performance", "asset", "Performance", None],
    "proprietary": ["TRUE", "false", "no", "yes"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('attr.fee_basis == "performance"', [True, False, True, False]),
        ("attr.fee_basis != 'performance'", [False, True, False, True]),
        ("attr.proprietary", [True, False, False, True]),
        ("not attr.proprietary", [False, True, True, False]),
        ('attr.proprietary or attr.fee_basis == performance', [True, False, True, True]),
        ('attr.proprietary and not (attr.fee_basis == "asset")', [True, False, False, True]),
    ],
)
def test_selects_accounts(text: str, expected: list[bool]) -> None:
    assert groups.favoured_accounts(text, TABLE, 4) == expected


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("__import__('os')", 1),
        ("attr.fee_basis ==", 18),
        ("attr.proprietary attr.fee_basis", 18),
        ("(attr.proprietary", 18),
        ("attr.fee_basis == performance; rm", 30),
    ],
)
def test_rejects_anything_else_with_a_column(text: str, column: int) -> None:
    with pytest.raises(InputError) as caught:
        groups.parse(text)
    assert caught.value.codes == ["forensics.bad_favoured"]
    assert caught.value.diagnostics[0].location.column == column


def test_unknown_attribute_is_named() -> None:
    with pytest.raises(InputError) as caught:
        groups.favoured_accounts("attr.employee", TABLE, 4)
    assert caught.value.codes == ["forensics.unknown_attribute"]
    assert "attr.fee_basis" in (caught.value.diagnostics[0].hint or "")
