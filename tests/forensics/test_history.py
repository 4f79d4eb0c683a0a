"""Reading and validating history files: exact values, refused rows, located errors."""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.errors import Code, ExitCode, FileAccessError, InputError
from fairalloc.forensics import history
from tests.forensics.conftest import ROWS, write_history


def _load(folder: pathlib.Path, strict: bool = False) -> history.History:
    overrides = folder / "overrides.csv"
    return history.load(folder / "allocations.csv", folder / "prices.csv",
                        overrides if overrides.exists() else None, strict)


def test_values_are_exact_and_coded(history: pathlib.Path) -> None:
    h = _load(history)
    a = h.allocations
    assert a.price_scale == 2
    assert a.price.tolist() == [10000, 10000, 10250, 10250]
    assert a.quantity.dtype == np.int64 and a.quantity.tolist() == [600, 600, 500, 500]
    assert a.side.tolist() == [1, 1, -1, -1]
    assert a.accounts == ["A", "C"]
    assert a.attributes["fee_basis"] == ["performance", "asset"]
    assert [t.refused for t in h.tallies] == [0, 0, 0]


def test_bad_rows_are_refused_with_location_and_counted(tmp_path: pathlib.Path) -> None:
    rows = ROWS + [
        "B3,2025-03-04,XYZ,buy,A,-5,100.00,2025-03-04T10:00:00-05:00,,,,,pm,asset",
        "B3,2025-03-04,XYZ,hold,C,5,100.00,2025-03-04T10:00:00-05:00,,,,,pm,asset",
        "B4,2025-03-04,XYZ,buy,C,5,1e2,2025-03-04T10:00:00-05:00,,,,,pm,asset",
        "B5,2025-03-04,XYZ,buy,C,5,100.00,2025-03-04 10:00,,,,,pm,asset",
        "B1,2025-03-03,XYZ,buy,A,600,100.00,2025-03-03T10:05:00-05:00,,,,,pm,performance",
    ]
    folder = write_history(tmp_path, rows)
    h = _load(folder)
    tally = h.tallies[0]
    assert (tally.read, tally.used, tally.refused) == (9, 4, 5)
    assert tally.reasons == {
        "forensics.bad_integer: quantity": 1,
        "forensics.bad_side: side": 1,
        "forensics.bad_decimal: price": 1,
        "forensics.bad_timestamp: allocated_at": 1,
        "forensics.duplicate_row: account": 1,
    }
    first = tally.listed[0]
    assert (first.location.line, first.location.column) == (6, 6)  # quantity is field 6
    assert first.location.file is not None and first.location.file.endswith("allocations.csv")
    assert len(h.allocations) == 4


def test_strict_mode_refuses_the_run(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path, ROWS + ["B9,2025-13-01,XYZ,buy,A,1,1.00,x,,,,,pm,asset"])
    with pytest.raises(InputError) as caught:
        _load(folder, strict=True)
    assert caught.value.exit_code == ExitCode.INVALID_INPUT
    assert caught.value.codes == ["forensics.bad_date"]
    assert caught.value.diagnostics[0].location.line == 6


def test_missing_column_is_a_malformed_file(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path)
    (folder / "prices.csv").write_text("symbol,day,close\nXYZ,2025-03-03,1.00\n")
    with pytest.raises(InputError) as caught:
        _load(folder)
    assert caught.value.codes == ["forensics.missing_column"]
    assert caught.value.diagnostics[0].location.line == 1


def test_unreadable_file_is_an_io_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileAccessError) as caught:
        history.load(tmp_path / "nope.csv", tmp_path / "prices.csv")
    assert caught.value.exit_code == ExitCode.IO


def test_not_utf8_is_malformed(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path)
    (folder / "prices.csv").write_bytes(b"symbol,date,close\nX\xff\xfe,2025-03-03,1.00\n")
    with pytest.raises(InputError) as caught:
        _load(folder)
    assert caught.value.codes == ["forensics.malformed_csv"]


def test_line_numbers_count_quoted_line_breaks(tmp_path: pathlib.Path) -> None:
    overrides = (
        "order_id,account,recorded_at,recorded_by,reason_code,memo\n"
        'B1,A,2025-03-03T18:00:00-05:00,pm,MKT_COND,"two\nlines"\n'
        "B2,C,yesterday,ops,CASH,late\n"
    )
    folder = write_history(tmp_path, overrides=overrides)
    h = _load(folder)
    refusal = h.tallies[2].listed[0]
    assert refusal.code == "forensics.bad_timestamp"
    assert (refusal.location.line, refusal.location.column) == (4, 3)
    assert h.overrides is not None and h.overrides.memo == ["two\nlines"]


@pytest.mark.parametrize(
    ("row", "code", "line", "column"),
    [
        ("B9,2025-03-04,XYZ,buy,A,10", "forensics.short_row", 6, 7),
        (ROWS[0] + ",surplus", "forensics.extra_field", 6, 15),
        ('B9,"2025-03-04",XYZ,buy,A,10', "forensics.short_row", 6, 7),  # quoted: exact path
    ],
)
def test_ragged_rows_are_refused_with_their_location(
    tmp_path: pathlib.Path, row: str, code: str, line: int, column: int
) -> None:
    folder = write_history(tmp_path, ROWS + [row])
    with pytest.raises(InputError) as caught:
        _load(folder)
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.location.line, diagnostic.location.column) == (
        code, line, column)


def test_duplicate_header_is_refused(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path)
    (folder / "prices.csv").write_text("symbol,date,symbol\nXYZ,2025-03-03,1.00\n")
    with pytest.raises(InputError) as caught:
        _load(folder)
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.location.line, diagnostic.location.column) == (
        "forensics.duplicate_column", 1, 3)


def test_header_only_and_all_refused_files_are_clean_errors(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path)
    (folder / "prices.csv").write_text("symbol,date,close\n")
    with pytest.raises(InputError) as caught:
        _load(folder)
    assert caught.value.codes == ["forensics.no_rows"]
    (folder / "prices.csv").write_text("symbol,date,close\nXYZ,yesterday,1.00\n")
    with pytest.raises(InputError) as caught:
        _load(folder)
    assert caught.value.codes == ["forensics.no_usable_rows", "forensics.bad_date"]


def test_header_only_overrides_mean_no_overrides(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path, overrides="order_id,account,recorded_at,recorded_by,"
                           "reason_code,memo\n")
    h = _load(folder)
    assert h.overrides is not None and h.overrides.memo == []


def test_overlong_field_is_located(tmp_path: pathlib.Path) -> None:
    memo = "x" * (history.MAX_FIELD_BYTES + 1)
    overrides = ("order_id,account,recorded_at,recorded_by,reason_code,memo\n"
                 f"B1,A,2025-03-03T18:00:00-05:00,pm,MKT_COND,{memo}\n")
    folder = write_history(tmp_path, overrides=overrides)
    with pytest.raises(InputError) as caught:
        _load(folder)
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.location.line, diagnostic.location.column) == (
        "forensics.field_too_long", 2, 6)


def _to_parquet(csv_path: pathlib.Path, decimals: dict[str, int]) -> pathlib.Path:
    """The CSV's table as Parquet with typed columns: DECIMAL prices, zoned TIMESTAMPs."""
    import polars as pl

    frame = pl.read_csv(csv_path, infer_schema=False)
    casts = []
    for name in frame.columns:
        if name in decimals:
            casts.append(pl.col(name).cast(pl.Decimal(18, decimals[name])))
        elif name in ("allocated_at", "executed_at", "recorded_at"):
            casts.append(pl.col(name).str.to_datetime("%+", time_zone="UTC", time_unit="us"))
        elif name in ("quantity", "intended", "order_quantity", "order_filled"):
            casts.append(pl.col(name).cast(pl.Int64))
        else:
            casts.append(pl.col(name))
    out = csv_path.with_suffix(".parquet")
    frame.select(casts).write_parquet(out)
    return out


def test_parquet_history_reads_like_its_csv(tmp_path: pathlib.Path) -> None:
    from fairalloc.forensics.simulate import CherryPicker, FirmSpec, simulate

    firm = simulate(FirmSpec(seed=3, orders=60, cherry=CherryPicker()), tmp_path)
    from_csv = history.load(firm.allocations, firm.prices, firm.overrides)
    from_parquet = history.load(_to_parquet(firm.allocations, {"price": 2}),
                                _to_parquet(firm.prices, {"close": 2}),
                                _to_parquet(firm.overrides, {}))
    a, b = from_csv.allocations, from_parquet.allocations
    for name in ("order", "quantity", "price", "allocated_at", "executed_at", "intended"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.price_scale == b.price_scale and a.attributes == b.attributes
    assert np.array_equal(from_csv.closes.close, from_parquet.closes.close)


def test_parquet_float_prices_are_refused_with_their_column(tmp_path: pathlib.Path) -> None:
    import polars as pl

    folder = write_history(tmp_path)
    frame = pl.read_csv(folder / "prices.csv")  # close inferred as a binary float
    frame.write_parquet(folder / "prices.parquet")
    with pytest.raises(InputError) as caught:
        history.load(folder / "allocations.csv", folder / "prices.parquet")
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.location.column) == ("forensics.float_column", 3)


def test_typed_parquet_values_are_refused_with_their_row_and_column(tmp_path: pathlib.Path) -> None:
    import polars as pl

    folder = write_history(tmp_path, ROWS + [
        "B3,2025-03-04,XYZ,buy,A,-5,100.00,2025-03-04T10:00:00-05:00,,,,,pm,asset",
        "B4,2025-03-04,XYZ,buy,C,5,12345678901.00,2025-03-04T10:00:00-05:00,,,,,pm,asset",
    ])
    allocations = _to_parquet(folder / "allocations.csv", {"price": 2})
    frame = pl.read_parquet(allocations)
    assert frame.schema["quantity"] == pl.Int64 and isinstance(frame.schema["price"], pl.Decimal)
    h = history.load(allocations, folder / "prices.csv")
    tally = h.tallies[0]
    assert tally.reasons == {"forensics.bad_integer: quantity": 1,
                             "forensics.bad_decimal: price": 1}
    assert [(d.location.line, d.location.column) for d in tally.listed] == [(5, 6), (6, 7)]
    assert len(h.allocations) == 4


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 5), st.integers(-1, 3)), max_size=40),
       st.integers(1, 10_000))
def test_repeated_keys_are_every_later_row_of_a_pair(pairs: list[tuple[int, int]],
                                                     spread: int) -> None:
    """Both ways of finding repeats (counting per pair, hashing when the pairs are too many)
    flag exactly the rows whose pair an earlier row already had."""
    import polars as pl

    first = np.array([a for a, _ in pairs], dtype=np.int32)
    second = np.array([b for _, b in pairs], dtype=np.int32)
    names_first = pl.Series([str(i) for i in range(6 * spread)])  # a wide space when spread is large
    names_second = pl.Series([str(i) for i in range(4)])
    seen: set[tuple[int, int]] = set()
    expected = []
    for pair in pairs:
        expected.append(pair in seen)
        seen.add(pair)
    repeated = history._repeats((first, names_first), (second, names_second))
    assert repeated.tolist() == expected


def test_a_blank_line_does_not_shift_the_location_of_a_refused_row(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path, ROWS[:2] + [""] + ROWS[2:] + [
        "B3,2025-03-04,XYZ,hold,C,5,100.00,2025-03-04T10:00:00-05:00,,,,,pm,asset"])
    listed = _load(folder).tallies[0].listed
    assert [(d.code, d.location.line, d.location.column) for d in listed] == [
        ("forensics.missing_value", 4, 1),  # the blank line is a row of empty values
        ("forensics.bad_side", 7, 4),
    ]


def test_an_optional_text_column_empty_in_every_row_is_read_as_absent(tmp_path: pathlib.Path) -> None:
    rows = [",".join(cells[:12] + ["", cells[13]]) for cells in (row.split(",") for row in ROWS)]  # no allocated_by
    h = _load(write_history(tmp_path, rows))
    assert len(h.allocations) == len(ROWS) and [t.refused for t in h.tallies] == [0, 0, 0]


def test_a_quote_never_closed_is_a_located_malformed_file(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path)
    prices = folder / "prices.csv"
    lines = prices.read_text().splitlines()
    lines[2] = lines[2].replace(",", ',"', 1)  # opens a quoted field that runs to the end of the file
    prices.write_text("\n".join(lines + ["XYZ,2025-03-0%d,1%02d.00" % (d % 9 + 1, d) for d in range(4000)]
                                * 3 + [""]))
    with pytest.raises(InputError) as raised:
        _load(folder)
    (problem,) = raised.value.diagnostics
    assert problem.code == "forensics.malformed_csv" and problem.location.line == 3
    assert problem.location.file is not None and problem.location.file.endswith("prices.csv")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.integers(1, 9))
def test_the_raw_shape_counts_quotes_commas_and_records_across_blocks(data: bytes, block: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "f.csv"
        path.write_bytes(data)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(history, "BLOCK_BYTES", block)
            shape = history._raw_shape(path)
    records = data.count(b"\n") + (data[-1:] not in (b"\n", b""))
    assert (shape.quoted, shape.commas, shape.records) == (b'"' in data, data.count(b","), records)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.booleans(), st.integers(1, 50),
       st.integers(2, 24))
def test_short_lines_are_never_claimed_for_a_long_line(
    lengths: list[int], ended: bool, block: int, limit: int
) -> None:
    """Lines known short are no longer than the field limit; lines shorter than half of it are
    always known short, whatever the block size."""
    data = b"\n".join(b"x" * n for n in lengths) + (b"\n" if ended else b"")
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "f.csv"
        path.write_bytes(data)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(history, "BLOCK_BYTES", block)
            patch.setattr(history, "MAX_FIELD_BYTES", limit)
            shape = history._raw_shape(path)
    if shape.short_lines:
        assert max(lengths) <= limit
    if max(lengths) < limit // 2:
        assert shape.short_lines


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([None, "", " ", "\t", " B1", "B2", "B1"]),
                          st.sampled_from([None, "buy", "sell", "sell_short", "hold", " buy"]),
                          st.integers(-1, 3)), min_size=1, max_size=30))
def test_checks_by_name_fail_the_rows_that_row_checks_fail(
    rows: list[tuple[str | None, str | None, int]]
) -> None:
    """A check made once per distinct value and looked up by code refuses each row for the same
    first check as the same check made on every row."""
    import polars as pl

    frame = pl.DataFrame({"order_id": [r[0] for r in rows], "side": [r[1] for r in rows]},
                         schema={"order_id": pl.String, "side": pl.String})
    first = np.array([r[2] for r in rows], dtype=np.int16)  # earlier row checks: -1 none
    refusal = history.Refusal(Code.FORENSICS_MISSING_VALUE, "x", "x")
    placeholder = (pl.lit(False), refusal)
    by_name = [placeholder, history._required_key("order_id"), placeholder,
               (history._ByName("side", ~pl.col("side").is_in(list(history.SIDES))),
                refusal)]
    coded = {name: history._physical(frame[name]) for name in ("order_id", "side")}
    merged = history._by_name(first.copy(), by_name, coded)
    by_row = [
        frame["order_id"].is_null() | (frame["order_id"].str.strip_chars() == ""),
        (~frame["side"].is_in(list(history.SIDES))).fill_null(False),
    ]
    expected = []
    for row, earlier in enumerate(first.tolist()):
        fails = [i for i, bad in ((1, by_row[0][row]), (3, by_row[1][row])) if bad]
        if earlier >= 0:
            fails.append(earlier)
        expected.append(min(fails) if fails else -1)
    assert merged.tolist() == expected
