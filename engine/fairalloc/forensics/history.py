"""Stage 1 of the forensic review: read and validate allocation history files.

Reads ``allocations.csv``, ``prices.csv`` and the optional ``overrides.csv`` in the format of the
allocation-history contract (``docs/forensics.md`` repeats it), or the same tables as Parquet
files (``.parquet``: text, integer, DECIMAL, DATE and zoned TIMESTAMP columns, read in polars'
streaming engine). Every value is checked column by
column with vectorised expressions, so ten million rows validate in seconds.

Contract on bad input:

* a file that cannot be read is a :class:`~fairalloc.errors.FileAccessError` (exit 7);
* a file that is not a CSV of the expected shape is an :class:`~fairalloc.errors.InputError`
  (exit 4), located at ``file:line:column``: a missing required column, a repeated column name,
  a row with fewer or more fields than the header, a field longer than ``MAX_FIELD_BYTES``, more
  than ``MAX_ROWS`` rows, not UTF-8, broken quoting, or (for allocations and prices) a header
  with no rows or no usable row;
* an individual bad row is *refused*: it is counted with its reason and its first few are listed
  with ``file:line:column`` (column = 1-based field number in the header). With ``strict=True``
  any refused row turns into an :class:`~fairalloc.errors.InputError` instead. Nothing is dropped
  without being counted.

Quantities are integers; prices are decimal strings turned exactly into integers at a common
scale (``price_scale`` decimal places), so money computed from them is exact.
"""

from __future__ import annotations

import csv
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from fairalloc.errors import Diagnostic, FileAccessError, InputError, Location

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]

#: Absent optional integers and timestamps are stored as this sentinel.
MISSING = np.iinfo(np.int64).min
#: How many refused rows per file are listed with their location (all are counted).
LISTED_REFUSALS = 50
#: Most decimal places accepted in a price (keeps scaled prices and money inside 64 bits).
MAX_DECIMALS = 8
#: Most integer digits accepted in a price or quantity.
MAX_INT_DIGITS = 10
#: Longest field accepted (a memo of a few pages); longer ones are a malformed file.
MAX_FIELD_BYTES = 65_536
#: Most data rows accepted in one file (keeps memory bounded: ~1 KiB per row at worst).
MAX_ROWS = 200_000_000
#: Structural errors listed per file before the run stops.
LISTED_STRUCTURE = 50

ALLOCATION_REQUIRED = (
    "order_id",
    "trade_date",
    "symbol",
    "side",
    "account",
    "quantity",
    "price",
    "allocated_at",
)
ALLOCATION_OPTIONAL = (
    "executed_at",
    "intended",
    "order_quantity",
    "order_filled",
    "allocated_by",
)
PRICE_REQUIRED = ("symbol", "date", "close")
OVERRIDE_REQUIRED = ("order_id", "account", "recorded_at", "recorded_by", "reason_code", "memo")
SIDES = {"buy": 1, "sell": -1, "sell_short": -1}
TEXT_COLUMNS = frozenset({"order_id", "symbol", "account", "recorded_by"})

_DECIMAL_RE = rf"^[0-9]{{1,{MAX_INT_DIGITS}}}(\.[0-9]{{1,{MAX_DECIMALS}}})?$"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one row was refused: a stable code, the column at fault and a readable reason."""

    code: str
    column: str
    reason: str


@dataclass
class FileTally:
    """Rows read, used and refused in one file, refusal counts by reason, and the first few."""

    file: str
    read: int = 0
    refused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    listed: list[Diagnostic] = field(default_factory=list)

    @property
    def used(self) -> int:
        return self.read - self.refused


@dataclass
class Allocations:
    """Validated allocation rows as columns. Text columns are integer codes into a name list."""

    order: I32
    order_ids: list[str]
    trade_day: I32  # days since 1970-01-01
    symbol: I32
    symbols: list[str]
    side: I8  # +1 buy, -1 sell or sell short
    account: I32
    accounts: list[str]
    quantity: I64
    price: I64  # scaled by 10**price_scale
    allocated_at: I64  # microseconds since the epoch, UTC
    executed_at: I64  # MISSING when absent
    intended: I64  # MISSING when absent
    order_quantity: I64  # MISSING when absent
    order_filled: I64  # MISSING when absent
    allocated_by: I32  # -1 when absent
    people: list[str]
    attributes: dict[str, list[str | None]]  # per account code: attribute name -> value
    price_scale: int

    def __len__(self) -> int:
        return int(self.order.shape[0])


@dataclass
class Closes:
    """Closing prices by (symbol name, day), scaled like the allocations' prices."""

    symbol: list[str]
    day: I32
    close: I64


@dataclass
class Overrides:
    """Override and memo records; ``order`` and ``account`` use the allocations' codes (-1: unknown)."""

    order: I32
    account: I32
    recorded_at: I64
    recorded_by: list[str]
    reason_code: list[str]
    memo: list[str]


@dataclass
class History:
    """Everything the analyses need, plus the per-file tallies the report shows."""

    allocations: Allocations
    closes: Closes
    overrides: Overrides | None
    tallies: list[FileTally]


def _malformed(path: pathlib.Path, code: str, message: str, line: int | None = 1,
               column: int | None = None, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, Location(file=str(path), line=line, column=column), hint)


def _header(path: pathlib.Path) -> list[str]:
    """The header row (quote-aware); a repeated column name is a malformed file."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise InputError(_malformed(path, "forensics.malformed_csv", "not a UTF-8 file",
                                    hint="export UTF-8 CSV")) from None
    except csv.Error as error:
        raise InputError(_malformed(path, "forensics.malformed_csv",
                                    f"not a readable CSV header: {error}")) from None
    seen: dict[str, int] = {}
    problems = []
    for column, name in enumerate(header, start=1):
        if name in seen:
            problems.append(_malformed(
                path, "forensics.duplicate_column",
                f"column {name!r} appears twice in the header (first as column {seen[name]})",
                1, column, "give every column one name"))
        seen.setdefault(name, column)
    if problems:
        raise InputError(problems)
    return header


def _field_counts(path: pathlib.Path) -> list[tuple[int, int]]:
    """(line, fields) of every data record, counting quoted line breaks (the exact path)."""
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start = reader.line_num + 1
        for row in reader:
            if row:
                out.append((start, len(row)))
            start = reader.line_num + 1
    return out


def _check_structure(path: pathlib.Path, width: int) -> None:
    """Every record has exactly ``width`` fields: short rows and extra fields are refused.

    Fast path, streamed with bounded memory: when the file has no quote character, each line is
    one record and its fields are its commas plus one (two lazy scans of the raw lines; only bad
    lines are collected). Otherwise the file is walked by Python's ``csv`` module, which
    understands quoted separators and line breaks.
    """
    lines = pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None,
                        schema={"line": pl.String}, truncate_ragged_lines=True,
                        encoding="utf8").with_row_index("number", offset=1)
    quoted, count = lines.select(
        pl.col("line").str.contains('"', literal=True).any(), pl.len()
    ).collect(engine="streaming").row(0)
    if count > MAX_ROWS + 1:
        raise InputError(_malformed(path, "forensics.too_many_rows",
                                    f"more than {MAX_ROWS:,} rows", MAX_ROWS + 2,
                                    hint="split the history by year"))
    if quoted:
        counts = _field_counts(path)
    else:
        fields = pl.col("line").str.count_matches(",", literal=True) + 1
        bad = (lines.filter((pl.col("number") > 1) & pl.col("line").is_not_null() & (fields != width))
               .select("number", fields.alias("fields")).head(LISTED_STRUCTURE)
               .collect(engine="streaming"))
        counts = list(zip(bad["number"].to_list(), bad["fields"].to_list(), strict=True))
    problems = []
    for line, fields_in_row in counts:
        if fields_in_row == width:
            continue
        if fields_in_row < width:
            problems.append(_malformed(
                path, "forensics.short_row",
                f"the row has {fields_in_row} fields, the header {width}", line,
                fields_in_row + 1, "every row needs a field for every column (an empty one is fine)"))
        else:
            problems.append(_malformed(
                path, "forensics.extra_field",
                f"the row has {fields_in_row} fields, the header {width}", line, width + 1,
                "quote fields that contain a comma"))
        if len(problems) >= LISTED_STRUCTURE:
            break
    if problems:
        raise InputError(problems)


def _check_field_sizes(path: pathlib.Path, frame: pl.DataFrame) -> None:
    """No field longer than ``MAX_FIELD_BYTES`` (a sign of a broken export or a wrong file)."""
    longest = frame.select(pl.all().str.len_bytes().max()).row(0)
    for column, size in enumerate(longest, start=1):
        if size is not None and size > MAX_FIELD_BYTES:
            name = frame.columns[column - 1]
            record = int(np.argmax(frame[name].str.len_bytes().fill_null(0).to_numpy()))
            line = _record_lines(path, [record]).get(record, record + 2)
            raise InputError(_malformed(
                path, "forensics.field_too_long",
                f"a {name!r} field of {size:,} bytes exceeds {MAX_FIELD_BYTES:,}", line, column,
                "check that this is the right file and its quoting is balanced"))


def is_parquet(path: pathlib.Path) -> bool:
    """Parquet files are recognised by their suffix; everything else is read as CSV."""
    return path.suffix.lower() in (".parquet", ".pq")


def _text_column(path: pathlib.Path, name: str, column: int, dtype: pl.DataType) -> pl.Expr:
    """A Parquet column as the text the CSV contract defines; binary floats and timestamps
    without a zone are refused (they cannot carry an exact decimal or an offset)."""
    col = pl.col(name)
    if dtype == pl.String:
        return col
    if dtype.is_float():
        raise InputError(_malformed(
            path, "forensics.float_column",
            f"column {name!r} holds binary floats, which cannot carry an exact decimal", None,
            column, "store decimals as Parquet DECIMAL or as text"))
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise InputError(_malformed(
                path, "forensics.bad_timestamp",
                f"column {name!r} holds timestamps without a time zone", None, column,
                "store timestamps with their zone (UTC is fine)"))
        return col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z")
    if dtype == pl.Date:
        return col.dt.to_string("%Y-%m-%d")
    if dtype.is_integer() or isinstance(dtype, pl.Decimal):
        return col.cast(pl.String)
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    raise InputError(_malformed(path, "forensics.bad_column_type",
                                f"column {name!r} has the unsupported Parquet type {dtype}",
                                None, column, "use text, integers, DECIMAL, DATE or TIMESTAMP"))


def _read_parquet(path: pathlib.Path) -> pl.DataFrame:
    """A Parquet file's columns as text, converted in polars' streaming engine."""
    try:
        lazy = pl.scan_parquet(path)
        schema = lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(_malformed(path, "forensics.malformed_parquet",
                                    f"not a readable Parquet file: {first}", None)) from None
    exprs = [_text_column(path, name, i, dtype).alias(name)
             for i, (name, dtype) in enumerate(schema.items(), start=1)]
    count = lazy.select(pl.len()).collect().item()
    if count > MAX_ROWS:
        raise InputError(_malformed(path, "forensics.too_many_rows",
                                    f"more than {MAX_ROWS:,} rows", MAX_ROWS + 1))
    return lazy.select(exprs).collect(engine="streaming")


def _read_text_csv(path: pathlib.Path, need_rows: bool = True) -> pl.DataFrame:
    """Read every column as text after checking the file's structure; map unreadable and
    malformed files onto the error contract. Parquet files (by suffix) are read the same way,
    their typed columns turned into the contract's text; their "line" is the 1-based row."""
    try:
        with path.open("rb") as handle:
            empty = handle.read(1) == b""
    except OSError as error:
        raise FileAccessError(
            Diagnostic(
                "forensics.unreadable",
                f"cannot read {path}: {error.strerror or error}",
                Location(file=str(path)),
                "check the path and its permissions",
            )
        ) from None
    if empty:
        raise InputError(_malformed(path, "forensics.empty_file", "the file is empty",
                                    hint="export the file with its header row"))
    if is_parquet(path):
        return _checked(path, _read_parquet(path), need_rows, 1)
    header = _header(path)
    try:
        _check_structure(path, len(header))
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=True)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            Diagnostic(
                "forensics.malformed_csv",
                f"not a readable CSV file: {first}",
                Location(file=str(path), line=1),
                "export UTF-8 CSV with a header row and quoted fields where needed",
            )
        ) from None
    return _checked(path, frame, need_rows, 2)


def _checked(path: pathlib.Path, frame: pl.DataFrame, need_rows: bool, first_line: int) -> pl.DataFrame:
    if need_rows and frame.height == 0:
        raise InputError(_malformed(path, "forensics.no_rows", "the file has a header but no rows",
                                    first_line, None, "export the history with its data rows"))
    _check_field_sizes(path, frame)
    return frame


def _check_header(frame: pl.DataFrame, path: pathlib.Path, required: Iterable[str]) -> None:
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise InputError(
            [
                Diagnostic(
                    "forensics.missing_column",
                    f"required column {name!r} is missing from the header",
                    Location(file=str(path), line=1),
                    f"the header has: {', '.join(frame.columns)}",
                )
                for name in missing
            ]
        )


def _record_lines(path: pathlib.Path, records: list[int]) -> dict[int, int]:
    """Line number of each wanted 0-based data record, counting quoted line breaks correctly
    (for Parquet: the 1-based row number)."""
    if is_parquet(path):
        return {r: r + 1 for r in records}
    wanted = set(records)
    last = max(wanted)
    lines: dict[int, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start = reader.line_num + 1
        for index, _row in enumerate(reader):
            if index in wanted:
                lines[index] = start
            if index >= last:
                break
            start = reader.line_num + 1
    return lines


def _tally(
    path: pathlib.Path,
    frame: pl.DataFrame,
    checks: list[tuple[pl.Expr, Refusal]],
    strict: bool,
    duplicates: tuple[Bool, Refusal] | None = None,
) -> tuple[FileTally, Bool]:
    """Evaluate ``checks`` (each an expression true on bad rows) and the optional ``duplicates``
    mask (checked last); return the tally and the keep-mask.

    A row failing several checks is refused once, for the first failing check in list order.
    """
    tally = FileTally(file=str(path), read=frame.height)
    if frame.height == 0:
        return tally, np.ones(frame.height, dtype=np.bool_)
    bad = frame.select(
        [expr.fill_null(False).alias(f"c{i}") for i, (expr, _) in enumerate(checks)]
    ).to_numpy()
    bad = np.asarray(bad, dtype=np.bool_).reshape(frame.height, len(checks))
    if duplicates is not None:
        bad = np.column_stack([bad, duplicates[0]])
        checks = [*checks, (pl.lit(False), duplicates[1])]
    any_bad = bad.any(axis=1)
    first = np.where(any_bad, bad.argmax(axis=1), -1)
    tally.refused = int(any_bad.sum())
    for i, (_expr, refusal) in enumerate(checks):
        count = int((first == i).sum())
        if count:
            key = f"{refusal.code}: {refusal.column}"
            tally.reasons[key] = tally.reasons.get(key, 0) + count
    if tally.refused:
        records = [int(r) for r in np.flatnonzero(any_bad)[:LISTED_REFUSALS]]
        lines = _record_lines(path, records)
        for record in records:
            refusal = checks[int(first[record])][1]
            column = frame.columns.index(refusal.column) + 1
            tally.listed.append(
                Diagnostic(
                    refusal.code,
                    refusal.reason,
                    Location(file=str(path), line=lines.get(record, record + 2), column=column),
                )
            )
        if strict:
            raise InputError(tally.listed)
    keep: Bool = np.logical_not(any_bad)
    return tally, keep


def _require_usable(path: pathlib.Path, tally: FileTally) -> None:
    """A file whose every row was refused leaves nothing to review: a malformed file."""
    if tally.read and tally.used == 0:
        raise InputError([
            _malformed(path, "forensics.no_usable_rows",
                       f"all {tally.read:,} rows were refused; the first follow", 2, None),
            *tally.listed,
        ])


def _required(name: str) -> tuple[pl.Expr, Refusal]:
    """Empty required value. Whitespace-only text counts as empty; typed columns reject it in
    their own format check."""
    bad = pl.col(name).is_null()
    if name in TEXT_COLUMNS:
        bad = bad | (pl.col(name).str.strip_chars() == "")
    return bad, Refusal("forensics.missing_value", name, f"required value {name!r} is empty")


def _format_check(name: str, bad: pl.Expr, optional: bool, reason: str, message: str) -> tuple[pl.Expr, Refusal]:
    """A value of column ``name`` in the wrong format; an empty optional value is not one."""
    if optional:
        bad = pl.col(name).is_not_null() & bad
    return bad, Refusal(reason, name, message)


def _decimal_check(name: str, optional: bool = False) -> tuple[pl.Expr, Refusal]:
    col = pl.col(name)
    bad = ~col.str.contains(_DECIMAL_RE) | ~col.str.contains("[1-9]")
    return _format_check(name, bad, optional, "forensics.bad_decimal",
                         f"{name!r} must be a positive decimal like 99.95 with at most {MAX_DECIMALS} decimals")


def _integer_check(name: str, optional: bool = False) -> tuple[pl.Expr, Refusal]:
    col = pl.col(name)
    value = col.cast(pl.Int64, strict=False)
    bad = value.is_null() | (value <= 0) | col.str.contains("[^0-9]")
    return _format_check(name, bad, optional, "forensics.bad_integer",
                         f"{name!r} must be a whole number greater than zero")


def _parsed(name: str) -> str:
    """Name of the helper column holding a timestamp column parsed once (µs since the epoch)."""
    return f"\x00{name}"


def _with_parsed_times(frame: pl.DataFrame, names: Iterable[str]) -> pl.DataFrame:
    """Parse each timestamp column once; unparseable or empty values become null."""
    return frame.with_columns(
        pl.col(name)
        .str.to_datetime("%+", time_zone="UTC", strict=False, time_unit="us")
        .dt.epoch("us")
        .alias(_parsed(name))
        for name in names
    )


def _timestamp_check(name: str, optional: bool = False) -> tuple[pl.Expr, Refusal]:
    return _format_check(name, pl.col(_parsed(name)).is_null(), optional, "forensics.bad_timestamp",
                         f"{name!r} must be an ISO 8601 timestamp with an offset, e.g. 2025-03-04T15:02:00-05:00")


def _date_check(name: str) -> tuple[pl.Expr, Refusal]:
    col = pl.col(name)
    bad = (col.str.len_bytes() != 10) | col.str.to_date("%Y-%m-%d", strict=False).is_null()
    return bad, Refusal("forensics.bad_date", name, f"{name!r} must be a date YYYY-MM-DD")


def _decimal_scale(frame: pl.DataFrame, name: str) -> int:
    """Largest number of decimals used in a (validated) decimal column."""
    if frame.height == 0:
        return 0
    col = pl.col(name)
    longest = frame.select(
        (col.str.len_bytes() - col.str.find(".", literal=True) - 1).max()
    ).item()
    return int(longest or 0)


def _scaled(name: str, scale: int) -> pl.Expr:
    """Exact integer value of a validated decimal column times ``10**scale``."""
    col = pl.col(name)
    point = col.str.find(".", literal=True)
    decimals = (col.str.len_bytes() - point - 1).fill_null(0).cast(pl.Int64)
    digits = col.str.replace(".", "", literal=True).cast(pl.Int64)
    scaled: pl.Expr = digits * pl.lit(10, pl.Int64).pow(scale - decimals)
    return scaled


def _timestamps(name: str) -> pl.Expr:
    return pl.col(_parsed(name)).fill_null(MISSING)


def _codes(series: pl.Series) -> tuple[I32, list[str]]:
    """Dense integer codes of a text column, names sorted so the codes do not depend on row order."""
    names = sorted(series.drop_nulls().unique().to_list())
    lookup = pl.DataFrame({"name": names, "code": np.arange(len(names), dtype=np.int32)})
    coded = (
        series.rename("name").to_frame().join(lookup, on="name", how="left", maintain_order="left")
    )
    return coded["code"].fill_null(-1).to_numpy().astype(np.int32), names


def _duplicates(
    frame: pl.DataFrame, columns: tuple[str, str], name: str, what: str
) -> tuple[Bool, Refusal]:
    """Rows whose pair of key columns repeats an earlier row's (the first one is kept)."""
    codes = frame.select(
        pl.col(c).fill_null("").cast(pl.Categorical).to_physical().cast(pl.Int64)
        for c in columns
    )
    first, second = codes[columns[0]].to_numpy(), codes[columns[1]].to_numpy()
    key = first * (int(second.max()) + 1 if second.size else 1) + second
    order = np.argsort(key, kind="stable")
    repeated = np.zeros(key.size, dtype=np.bool_)
    repeated[order[1:]] = key[order[1:]] == key[order[:-1]]
    return repeated, Refusal(
        "forensics.duplicate_row", name, f"another row already has the same {what}"
    )


def read_allocations(
    path: pathlib.Path, strict: bool = False
) -> tuple[pl.DataFrame, FileTally, list[str]]:
    """Read and validate ``allocations.csv``; return kept rows (text), tally and attribute names."""
    frame = _read_text_csv(path)
    _check_header(frame, path, ALLOCATION_REQUIRED)
    for name in ALLOCATION_OPTIONAL:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    frame = _with_parsed_times(frame, ("allocated_at", "executed_at"))
    checks = [_required(name) for name in ALLOCATION_REQUIRED]
    checks += [
        _date_check("trade_date"),
        (
            ~pl.col("side").is_in(list(SIDES)),
            Refusal("forensics.bad_side", "side", "'side' must be buy, sell or sell_short"),
        ),
        _integer_check("quantity"),
        _decimal_check("price"),
        _timestamp_check("allocated_at"),
    ]
    checks.append(_timestamp_check("executed_at", optional=True))
    checks += [
        _integer_check(name, optional=True)
        for name in ("intended", "order_quantity", "order_filled")
    ]
    duplicates = _duplicates(frame, ("order_id", "account"), "account", "order_id and account")
    tally, keep = _tally(path, frame, checks, strict, duplicates)
    _require_usable(path, tally)
    attributes = [name for name in frame.columns if name.startswith("attr.")]
    return frame.filter(pl.Series(keep)), tally, attributes


def read_closes(path: pathlib.Path, strict: bool = False) -> tuple[pl.DataFrame, FileTally]:
    """Read and validate ``prices.csv``; a repeated (symbol, date) row is refused."""
    frame = _read_text_csv(path)
    _check_header(frame, path, PRICE_REQUIRED)
    checks = [_required(name) for name in PRICE_REQUIRED]
    checks += [_date_check("date"), _decimal_check("close")]
    duplicates = _duplicates(frame, ("symbol", "date"), "date", "symbol and date")
    tally, keep = _tally(path, frame, checks, strict, duplicates)
    _require_usable(path, tally)
    return frame.filter(pl.Series(keep)), tally


def read_overrides(path: pathlib.Path, strict: bool = False) -> tuple[pl.DataFrame, FileTally]:
    """Read and validate ``overrides.csv`` (memos may span lines inside quotes); a header with no
    rows is a firm without overrides."""
    frame = _read_text_csv(path, need_rows=False)
    _check_header(frame, path, OVERRIDE_REQUIRED)
    frame = _with_parsed_times(frame, ("recorded_at",))
    checks = [_required(name) for name in ("order_id", "account", "recorded_at", "recorded_by")]
    checks.append(_timestamp_check("recorded_at"))
    tally, keep = _tally(path, frame, checks, strict)
    return frame.filter(pl.Series(keep)), tally


def _attribute_table(
    frame: pl.DataFrame, names: list[str], account: I32, count: int
) -> dict[str, list[str | None]]:
    """One value per account and attribute: the account's last non-empty value in the file.

    Groups on the integer account codes (fast), then picks each account's last non-empty row.
    """
    table: dict[str, list[str | None]] = {}
    for name in names:
        present = frame[name].is_not_null().to_numpy()
        rows = pl.DataFrame({"account": account[present], "row": np.flatnonzero(present)})
        last = rows.group_by("account").agg(pl.col("row").max())
        values: list[str | None] = [None] * count
        picked = frame[name].gather(last["row"].to_numpy()).to_list()
        for code, value in zip(last["account"].to_list(), picked, strict=True):
            values[int(code)] = value
        table[name.removeprefix("attr.")] = values
    return table


def load(
    allocations_path: pathlib.Path,
    prices_path: pathlib.Path,
    overrides_path: pathlib.Path | None = None,
    strict: bool = False,
) -> History:
    """Read all history files into columns; the single entry point of this stage."""
    alloc_text, alloc_tally, attr_names = read_allocations(allocations_path, strict)
    close_text, close_tally = read_closes(prices_path, strict)
    scale = max(_decimal_scale(alloc_text, "price"), _decimal_scale(close_text, "close"))
    order, order_ids = _codes(alloc_text["order_id"])
    symbol, symbols = _codes(alloc_text["symbol"])
    account, accounts = _codes(alloc_text["account"])
    person, people = _codes(alloc_text["allocated_by"])
    numbers = alloc_text.select(
        pl.col("trade_date").str.to_date("%Y-%m-%d").cast(pl.Int32).alias("day"),
        pl.col("side").replace_strict(SIDES, return_dtype=pl.Int8).alias("side"),
        pl.col("quantity").cast(pl.Int64).alias("quantity"),
        _scaled("price", scale).alias("price"),
        _timestamps("allocated_at").alias("allocated_at"),
        _timestamps("executed_at").alias("executed_at"),
        *[
            pl.col(name).cast(pl.Int64).fill_null(MISSING).alias(name)
            for name in ("intended", "order_quantity", "order_filled")
        ],
    )
    allocations = Allocations(
        order=order,
        order_ids=order_ids,
        trade_day=numbers["day"].to_numpy().astype(np.int32),
        symbol=symbol,
        symbols=symbols,
        side=numbers["side"].to_numpy().astype(np.int8),
        account=account,
        accounts=accounts,
        quantity=numbers["quantity"].to_numpy().astype(np.int64),
        price=numbers["price"].to_numpy().astype(np.int64),
        allocated_at=numbers["allocated_at"].to_numpy().astype(np.int64),
        executed_at=numbers["executed_at"].to_numpy().astype(np.int64),
        intended=numbers["intended"].to_numpy().astype(np.int64),
        order_quantity=numbers["order_quantity"].to_numpy().astype(np.int64),
        order_filled=numbers["order_filled"].to_numpy().astype(np.int64),
        allocated_by=person,
        people=people,
        attributes=_attribute_table(alloc_text, attr_names, account, len(accounts)),
        price_scale=scale,
    )
    close_numbers = close_text.select(
        pl.col("symbol"),
        pl.col("date").str.to_date("%Y-%m-%d").cast(pl.Int32).alias("day"),
        _scaled("close", scale).alias("close"),
    )
    closes = Closes(
        symbol=close_numbers["symbol"].to_list(),
        day=close_numbers["day"].to_numpy().astype(np.int32),
        close=close_numbers["close"].to_numpy().astype(np.int64),
    )
    tallies = [alloc_tally, close_tally]
    overrides: Overrides | None = None
    if overrides_path is not None:
        over_text, over_tally = read_overrides(overrides_path, strict)
        tallies.append(over_tally)
        overrides = _code_overrides(over_text, order_ids, accounts)
    return History(allocations, closes, overrides, tallies)


def _code_overrides(frame: pl.DataFrame, order_ids: list[str], accounts: list[str]) -> Overrides:
    order_index = {name: i for i, name in enumerate(order_ids)}
    account_index = {name: i for i, name in enumerate(accounts)}
    return Overrides(
        order=np.array([order_index.get(o, -1) for o in frame["order_id"]], dtype=np.int32),
        account=np.array([account_index.get(a, -1) for a in frame["account"]], dtype=np.int32),
        recorded_at=frame.select(_timestamps("recorded_at").alias("t"))["t"]
        .to_numpy()
        .astype(np.int64),
        recorded_by=[str(v) for v in frame["recorded_by"]],
        reason_code=[str(v) if v is not None else "" for v in frame["reason_code"]],
        memo=[str(v) if v is not None else "" for v in frame["memo"]],
    )
