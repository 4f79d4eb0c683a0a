"""The findings file's text: column-held record listings write what ``json.dumps`` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.forensics import findings
from fairalloc.forensics.findings import RECORDS_BLOCK, Column, Records, dumps

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)  # quotes, controls, non-ASCII
VALUES = st.one_of(TEXT, st.integers(-(2**70), 2**70), st.booleans(), st.none(),
                   st.floats(allow_nan=False, allow_infinity=False))


def _reference(records: list[dict[str, object]]) -> str:
    return json.dumps(records, sort_keys=True, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.dictionaries(TEXT, st.lists(VALUES, min_size=1, max_size=5), max_size=4),
       st.integers(0, 12))
def test_records_write_the_text_of_the_list_of_dicts(
    data: st.DataObject, columns: dict[str, list[object]], rows: int,
) -> None:
    if not columns:
        rows = 0
    table = {name: Column(np.array(data.draw(st.lists(st.integers(0, len(values) - 1),
                                                       min_size=rows, max_size=rows)),
                                   dtype=np.int64), values)
             for name, values in columns.items()}
    records = Records(table)
    plain = list(records)
    assert len(plain) == rows == len(records)
    assert plain == [{name: column.values[int(column.codes[i])] for name, column in table.items()}
                     for i in range(rows)]
    assert "".join(records.json_pieces()) == _reference(plain)
    doc: dict[str, object] = {"b": [1, {"listing": records, "z": 0.5}], "a": "x"}
    assert dumps(doc) == _reference({"b": [1, {"listing": plain, "z": 0.5}], "a": "x"}) + "\n"  # type: ignore[arg-type]


def test_a_listing_longer_than_a_block_is_written_whole() -> None:
    minutes = np.round(np.linspace(-3.0, 3.0, RECORDS_BLOCK * 2 + 7), 1)
    records = Records({"minutes": Column.distinct(minutes),
                       "who": Column(np.arange(minutes.size) % 3, ["a", "é", '"q"'])})
    assert "".join(records.json_pieces()) == _reference(list(records))
    assert records[-1] == {"minutes": 3.0, "who": ["a", "é", '"q"'][(minutes.size - 1) % 3]}
    assert records[1:3] == [records[1], records[2]]
    with pytest.raises(IndexError):
        records[minutes.size]


def test_distinct_keeps_negative_zero_and_integers() -> None:
    column = Column.distinct(np.array([0.0, -0.0, 1.5, 0.0]))
    assert [column.values[c] for c in column.codes] == [0.0, -0.0, 1.5, 0.0]
    assert [repr(column.values[c]) for c in column.codes][1] == "-0.0"
    stamps = Column.distinct(np.array([7, 3, 7], dtype=np.int64))
    assert (stamps.values, stamps.codes.tolist()) == ([3, 7], [1, 0, 1])


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        Records({"a": Column(np.zeros(2, dtype=np.int64), ["x"]),
                 "b": Column(np.zeros(3, dtype=np.int64), ["y"])})


@settings(max_examples=300, deadline=None)
@given(st.one_of(VALUES, st.text(max_size=6), st.lists(VALUES, max_size=3),
                 st.dictionaries(TEXT, VALUES, max_size=3)))
def test_a_listed_value_is_encoded_as_json_dumps_encodes_it(value: object) -> None:
    """Text (lone surrogates too), integers of any size, bools, null, finite floats and
    containers: the shortcut gives the encoder's text."""
    assert findings._value_json(value) == findings._dumps(value)
