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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import polars as pl

from fairalloc.errors import Code, Diagnostic, FileAccessError, InputError, Location

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

    code: Code
    column: str
    reason: str


@dataclass(frozen=True)
class _ByName:
    """A check of a text key column made once per distinct value (and once for an empty one),
    then looked up for each row by its categorical code: ``bad`` is the row check, evaluated on
    a column of the distinct names called like the key column."""

    column: str
    bad: pl.Expr


Check = tuple[pl.Expr | _ByName, Refusal]


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


def _malformed(path: pathlib.Path, code: Code, message: str, line: int | None = 1,
               column: int | None = None, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, Location(file=str(path), line=line, column=column), hint)


def _header(path: pathlib.Path) -> list[str]:
    """The header row (quote-aware); a repeated column name is a malformed file."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise InputError(_malformed(path, Code.FORENSICS_MALFORMED_CSV, "not a UTF-8 file",
                                    hint="export UTF-8 CSV")) from None
    except csv.Error as error:
        raise InputError(_malformed(path, Code.FORENSICS_MALFORMED_CSV,
                                    f"not a readable CSV header: {error}")) from None
    seen: dict[str, int] = {}
    problems = []
    for column, name in enumerate(header, start=1):
        if name in seen:
            problems.append(_malformed(
                path, Code.FORENSICS_DUPLICATE_COLUMN,
                f"column {name!r} appears twice in the header (first as column {seen[name]})",
                1, column, "give every column one name"))
        seen.setdefault(name, column)
    if problems:
        raise InputError(problems)
    return header


def _field_counts(path: pathlib.Path) -> list[tuple[int, int]]:
    """(line, fields) of every data record, counting quoted line breaks (the exact path). A
    record the ``csv`` module cannot read (a quote never closed runs past its field limit) is a
    malformed file, located at the line where that record starts."""
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start = reader.line_num + 1
        try:
            for row in reader:
                if row:
                    out.append((start, len(row)))
                start = reader.line_num + 1
        except csv.Error as error:
            raise InputError(_malformed(path, Code.FORENSICS_MALFORMED_CSV, f"not a readable CSV record: {error}",
                                        start, None, "close every quoted field with a quote")) from None
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
        raise InputError(_malformed(path, Code.FORENSICS_TOO_MANY_ROWS,
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
                path, Code.FORENSICS_SHORT_ROW,
                f"the row has {fields_in_row} fields, the header {width}", line,
                fields_in_row + 1, "every row needs a field for every column (an empty one is fine)"))
        else:
            problems.append(_malformed(
                path, Code.FORENSICS_EXTRA_FIELD,
                f"the row has {fields_in_row} fields, the header {width}", line, width + 1,
                "quote fields that contain a comma"))
        if len(problems) >= LISTED_STRUCTURE:
            break
    if problems:
        raise InputError(problems)


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
            path, Code.FORENSICS_FLOAT_COLUMN,
            f"column {name!r} holds binary floats, which cannot carry an exact decimal", None,
            column, "store decimals as Parquet DECIMAL or as text"))
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise InputError(_malformed(
                path, Code.FORENSICS_BAD_TIMESTAMP,
                f"column {name!r} holds timestamps without a time zone", None, column,
                "store timestamps with their zone (UTC is fine)"))
        return col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z")
    if dtype == pl.Date:
        return col.dt.to_string("%Y-%m-%d")
    if dtype.is_integer() or isinstance(dtype, pl.Decimal):
        return col.cast(pl.String)
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    raise InputError(_malformed(path, Code.FORENSICS_BAD_COLUMN_TYPE,
                                f"column {name!r} has the unsupported Parquet type {dtype}",
                                None, column, "use text, integers, DECIMAL, DATE or TIMESTAMP"))


#: Bytes read at a time by the structural pre-check.
BLOCK_BYTES = 1 << 24
#: Helper columns of the validation query (names no CSV header can produce by accident).
REFUSED = "\x00refused"
TOO_LONG = "\x00too_long"


@dataclass(frozen=True)
class _Source:
    """A history file opened lazily: every column as text, and how its records map to lines."""

    path: pathlib.Path
    frame: pl.LazyFrame
    columns: list[str]
    first_line: int  # line (CSV) or row (Parquet) of the first record
    exact_lines: bool  # records may span lines (quoted line breaks): locate them with ``csv``
    typed: frozenset[str] = frozenset()  # Parquet columns validated in their own type
    short_fields: bool = False  # no field can be longer than MAX_FIELD_BYTES (short lines)

    def lines(self, records: list[int]) -> dict[int, int]:
        """Line (or row) of each 0-based record."""
        if not records:
            return {}
        if not self.exact_lines:
            return {r: r + self.first_line for r in records}
        return _record_lines(self.path, records)


@dataclass(frozen=True)
class _Shape:
    """What one pass over a CSV file's raw bytes shows."""

    quoted: bool  # a quote character anywhere
    commas: int
    records: int  # lines, the header included (a last line without a line end counts)
    short_lines: bool  # no line is longer than MAX_FIELD_BYTES (when True; False may be either)


def _raw_shape(path: pathlib.Path) -> _Shape:
    """The shape of the raw bytes, read in blocks into one buffer: one pass of vectorised byte
    comparisons, memory bounded by the block.

    Lines are known to be short without locating every line end: between a block's first and
    last line ends, every span of ``MAX_FIELD_BYTES // 2`` bytes holds one, so no line there is
    as long as two spans; the lines across block boundaries are measured exactly.
    """
    span = MAX_FIELD_BYTES // 2
    quoted, commas, newlines, last = False, 0, 0, -1  # last byte; -1 for no byte at all
    short, carried, longest = True, 0, 0  # bytes since the last line end; longest line measured
    buffer = bytearray(BLOCK_BYTES)
    data = np.frombuffer(buffer, dtype=np.uint8)
    matches = np.empty(BLOCK_BYTES, dtype=np.bool_)
    with path.open("rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            block, found = data[:size], matches[:size]
            quoted = quoted or buffer.find(b'"', 0, size) >= 0
            commas += int(np.count_nonzero(np.equal(block, ord(","), out=found)))
            ends = int(np.count_nonzero(np.equal(block, ord("\n"), out=found)))
            newlines += ends
            last = int(block[-1])
            if not ends:
                carried += size
                continue
            first, final = buffer.find(b"\n", 0, size), buffer.rfind(b"\n", 0, size)
            longest = max(longest, carried + first)
            inner = found[first:final]
            whole = inner.size - inner.size % span
            short = short and bool(inner[:whole].reshape(-1, span).any(axis=1).all())
            carried = size - 1 - final
    short = short and max(longest, carried) <= MAX_FIELD_BYTES
    return _Shape(quoted, commas, newlines + (last not in (ord("\n"), -1)), short)


def _precheck_structure(path: pathlib.Path, width: int) -> _Shape:
    """Every record has exactly ``width`` fields; return the file's raw shape.

    Fast path: a file without a quote character whose commas number exactly ``width - 1`` per
    line has the right shape on every line (no line has more fields: the reader refuses those,
    so none can have fewer). Anything else — quotes, blank lines, ragged rows — goes to the
    exact check, which locates every problem with its line and column.
    """
    shape = _raw_shape(path)
    if shape.records > MAX_ROWS + 1:
        raise InputError(_malformed(path, Code.FORENSICS_TOO_MANY_ROWS,
                                    f"more than {MAX_ROWS:,} rows", MAX_ROWS + 2,
                                    hint="split the history by year"))
    if shape.quoted or shape.commas != (width - 1) * shape.records:
        _check_structure(path, width)
    return shape


def _unreadable(path: pathlib.Path, error: BaseException) -> FileAccessError:
    strerror = error.strerror if isinstance(error, OSError) else None
    return FileAccessError(Diagnostic(
        Code.FORENSICS_UNREADABLE, f"cannot read {path}: {strerror or error}",
        Location(file=str(path)), "check the path and its permissions"))


#: What each typed column must hold: a Parquet column of that kind is validated in its own type
#: (no detour through text); any other is turned into the contract's text first.
ROLES = {
    **{name: "integer" for name in ("quantity", "intended", "order_quantity", "order_filled")},
    **{name: "decimal" for name in ("price", "close")},
    **{name: "timestamp" for name in ("allocated_at", "executed_at", "recorded_at")},
    **{name: "date" for name in ("trade_date", "date")},
}


def _native(role: str | None, dtype: pl.DataType) -> bool:
    """Whether a Parquet column of ``dtype`` already holds what ``role`` asks for."""
    if role == "integer":
        return dtype.is_integer()
    if role == "decimal":
        return isinstance(dtype, pl.Decimal) and (dtype.scale or 0) <= MAX_DECIMALS
    if role == "timestamp":
        return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    return role == "date" and dtype == pl.Date


def _open_parquet(path: pathlib.Path) -> _Source:
    """A Parquet file, scanned lazily: columns of the expected kind (integers, DECIMAL, zoned
    TIMESTAMP, DATE) stay typed, every other column becomes the contract's text in the query."""
    try:
        lazy = pl.scan_parquet(path)
        schema = lazy.collect_schema()
        count = lazy.select(pl.len()).collect().item()
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(_malformed(path, Code.FORENSICS_MALFORMED_PARQUET,
                                    f"not a readable Parquet file: {first}", None)) from None
    typed = frozenset(name for name, dtype in schema.items() if _native(ROLES.get(name), dtype))
    exprs = [pl.col(name) if name in typed else _text_column(path, name, i, dtype).alias(name)
             for i, (name, dtype) in enumerate(schema.items(), start=1)]
    if count > MAX_ROWS:
        raise InputError(_malformed(path, Code.FORENSICS_TOO_MANY_ROWS,
                                    f"more than {MAX_ROWS:,} rows", MAX_ROWS + 1))
    return _Source(path, lazy.select(exprs), list(schema), 1, False, typed)


def _open(path: pathlib.Path, keys: Callable[[str], bool] = lambda _name: False) -> _Source:
    """Open a history file lazily after the checks that need no parse: readable, not empty,
    a header without repeated names, every record as wide as the header. The text columns
    ``keys`` picks are parsed straight into categorical codes where no field can be too long
    (no per-field length check needs their text)."""
    try:
        with path.open("rb") as handle:
            empty = handle.read(1) == b""
    except OSError as error:
        raise _unreadable(path, error) from None
    if empty:
        raise InputError(_malformed(path, Code.FORENSICS_EMPTY_FILE, "the file is empty",
                                    hint="export the file with its header row"))
    if is_parquet(path):
        return _open_parquet(path)
    header = _header(path)
    shape = _precheck_structure(path, len(header))
    short = shape.short_lines and not shape.quoted
    schema = {name: _key_type() if short and keys(name) else pl.String for name in header}
    frame = pl.scan_csv(path, schema=schema, has_header=True, encoding="utf8")
    return _Source(path, frame, header, 2, shape.quoted, short_fields=short)


def _collect(source: _Source, exprs: list[pl.Expr]) -> pl.DataFrame:
    """Run the validation query in polars' streaming engine; a file the parser rejects is a
    malformed file."""
    try:
        return source.frame.select(exprs).collect(engine="streaming")
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        kind = "Parquet" if is_parquet(source.path) else "CSV"
        raise InputError(Diagnostic(
            Code.FORENSICS_MALFORMED_CSV if kind == "CSV" else Code.FORENSICS_MALFORMED_PARQUET,
            f"not a readable {kind} file: {first}",
            Location(file=str(source.path), line=1),
            "export UTF-8 CSV with a header row and quoted fields where needed" if kind == "CSV"
            else "check that the file is a complete Parquet file",
        )) from None
    except OSError as error:
        raise _unreadable(source.path, error) from None


def _check_header(source: _Source, required: Iterable[str]) -> None:
    missing = [name for name in required if name not in source.columns]
    if missing:
        raise InputError(
            [
                Diagnostic(
                    Code.FORENSICS_MISSING_COLUMN,
                    f"required column {name!r} is missing from the header",
                    Location(file=str(source.path), line=1),
                    f"the header has: {', '.join(source.columns)}",
                )
                for name in missing
            ]
        )


def _record_lines(path: pathlib.Path, records: list[int]) -> dict[int, int]:
    """Line number of each wanted 0-based data record, counting quoted line breaks correctly."""
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


def _first_refusal(checks: Sequence[Check]) -> pl.Expr:
    """Index of the first row check a row fails (in list order), null for a row that passes
    all; checks by name are made after the pass (:func:`_by_name`)."""
    return pl.coalesce(
        [pl.when(expr.fill_null(False)).then(pl.lit(i, pl.Int8))
         for i, (expr, _) in enumerate(checks) if isinstance(expr, pl.Expr)]
        + [pl.lit(None, pl.Int8)]
    ).alias(REFUSED)


def _by_name(first: npt.NDArray[np.int16], checks: Sequence[Check],
             coded: dict[str, Codes]) -> npt.NDArray[np.int16]:
    """The index of each row's first failing check, with the checks by name merged in (in
    place): each is evaluated on the distinct names of its column and looked up by the rows'
    codes only when some name fails it."""
    for i, (check, _) in enumerate(checks):
        if isinstance(check, pl.Expr):
            continue
        codes, names = coded[check.column]
        values = pl.concat([names.cast(pl.String), pl.Series([None], dtype=pl.String)])
        verdict = values.rename(check.column).to_frame().select(check.bad.fill_null(False))
        table = verdict.to_series().to_numpy()  # the last value, a null, is code -1
        if not table.any():  # no distinct value fails: no row does
            continue
        rows = np.flatnonzero(table[codes])
        earlier = first[rows]
        first[rows] = np.where((earlier < 0) | (earlier > i), np.int16(i), earlier)
    return first


def _first_too_long(source: _Source) -> pl.Expr:
    """1-based number of the first text field longer than ``MAX_FIELD_BYTES``, null if none is."""
    return pl.coalesce(
        [pl.when(pl.col(name).str.len_bytes() > MAX_FIELD_BYTES).then(pl.lit(i, pl.Int32))
         for i, name in enumerate(source.columns, start=1) if name not in source.typed]
        + [pl.lit(None, pl.Int32)]
    ).alias(TOO_LONG)


def _validated(
    source: _Source, checks: Sequence[Check], outputs: list[pl.Expr],
    need_rows: bool, parsed_times: Iterable[str] = (), parsed_dates: Iterable[str] = (),
) -> pl.DataFrame:
    """One streaming pass over the file: the first failing check of every row, the first
    overlong field (unless the file's lines are all short), and the ``outputs`` (typed columns,
    text keys). Timestamp and date columns
    are parsed once, into helper columns that checks and outputs share. Structural problems of
    the file (no rows, an overlong field) are raised here, located."""
    times = [
        (pl.col(name) if name in source.typed else
         pl.col(name).str.to_datetime("%+", time_zone="UTC", strict=False, time_unit="us"))
        .dt.epoch("us").alias(_parsed(name))
        for name in parsed_times
    ] + [
        pl.col(name).str.to_date("%Y-%m-%d", strict=False).alias(_parsed(name))
        for name in parsed_dates if name not in source.typed
    ]
    if times:
        source = replace(source, frame=source.frame.with_columns(times))
    lengths = [] if source.short_fields else [_first_too_long(source)]
    frame = _collect(source, [_first_refusal(checks), *lengths, *outputs])
    if need_rows and frame.height == 0:
        raise InputError(_malformed(source.path, Code.FORENSICS_NO_ROWS,
                                    "the file has a header but no rows", source.first_line,
                                    None, "export the history with its data rows"))
    overlong = (pl.Series(dtype=pl.UInt32) if source.short_fields
                else frame[TOO_LONG].is_not_null().arg_true())
    if overlong.len():
        record = int(overlong[0])
        column = int(frame[TOO_LONG][record])
        name = source.columns[column - 1]
        size = int(source.frame.slice(record, 1).select(pl.col(name).str.len_bytes())
                   .collect().item())
        raise InputError(_malformed(
            source.path, Code.FORENSICS_FIELD_TOO_LONG,
            f"a {name!r} field of {size:,} bytes exceeds {MAX_FIELD_BYTES:,}",
            source.lines([record])[record], column,
            "check that this is the right file and its quoting is balanced"))
    return frame


def _tally(
    source: _Source,
    frame: pl.DataFrame,
    checks: Sequence[Check],
    strict: bool,
    duplicates: tuple[Bool, Refusal] | None = None,
    coded: dict[str, Codes] | None = None,
) -> tuple[FileTally, Bool]:
    """Count and list the refused rows (each for its first failing check, repeats of an earlier
    row's key last); return the tally and the keep-mask. ``coded`` holds the codes of the
    columns checked by name."""
    tally = FileTally(file=str(source.path), read=frame.height)
    first = frame[REFUSED].fill_null(-1).to_numpy().astype(np.int16)
    if coded:
        first = _by_name(first, checks, coded)
    refusals = [refusal for _, refusal in checks]
    if duplicates is not None:
        first = np.where((first < 0) & duplicates[0], len(refusals), first)
        refusals.append(duplicates[1])
    bad = first >= 0
    tally.refused = int(bad.sum())
    if not tally.refused:
        return tally, np.logical_not(bad)
    for i, count in enumerate(np.bincount(first[bad], minlength=len(refusals))):
        if count:
            key = f"{refusals[i].code}: {refusals[i].column}"
            tally.reasons[key] = tally.reasons.get(key, 0) + int(count)
    records = [int(r) for r in np.flatnonzero(bad)[:LISTED_REFUSALS]]
    lines = source.lines(records)
    for record in records:
        refusal = refusals[int(first[record])]
        tally.listed.append(Diagnostic(
            refusal.code, refusal.reason,
            Location(file=str(source.path), line=lines.get(record, record + source.first_line),
                     column=source.columns.index(refusal.column) + 1),
        ))
    if strict:
        raise InputError(tally.listed)
    return tally, np.logical_not(bad)
def _require_usable(path: pathlib.Path, tally: FileTally) -> None:
    """A file whose every row was refused leaves nothing to review: a malformed file."""
    if tally.read and tally.used == 0:
        raise InputError([
            _malformed(path, Code.FORENSICS_NO_USABLE_ROWS,
                       f"all {tally.read:,} rows were refused; the first follow", 2, None),
            *tally.listed,
        ])


def _required(name: str) -> tuple[pl.Expr, Refusal]:
    """Empty required value. Whitespace-only text counts as empty; typed columns reject it in
    their own format check."""
    bad = pl.col(name).is_null()
    if name in TEXT_COLUMNS:
        bad = bad | (pl.col(name).str.strip_chars() == "")
    return bad, Refusal(Code.FORENSICS_MISSING_VALUE, name, f"required value {name!r} is empty")


def _required_key(name: str) -> Check:
    """Empty required value of a text key column (whitespace-only counts as empty), checked
    on the column's distinct names."""
    return (_ByName(name, pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")),
            Refusal(Code.FORENSICS_MISSING_VALUE, name, f"required value {name!r} is empty"))


def _format_check(name: str, bad: pl.Expr, optional: bool, reason: Code, message: str) -> tuple[pl.Expr, Refusal]:
    """A value of column ``name`` in the wrong format; an empty optional value is not one."""
    if optional:
        bad = pl.col(name).is_not_null() & bad
    return bad, Refusal(reason, name, message)


def _digits(col: pl.Expr) -> pl.Expr:
    """A decimal text's digits without its point, as an integer (exact: at most 18 digits pass
    the format check); the same expression in the check and the output is computed once."""
    return col.str.replace(".", "", literal=True).cast(pl.Int64, strict=False)


def _decimal_check(source: _Source, name: str, optional: bool = False) -> tuple[pl.Expr, Refusal]:
    col = pl.col(name)
    if name in source.typed:  # a DECIMAL of at most MAX_DECIMALS places
        bad = (col <= 0) | (col >= 10**MAX_INT_DIGITS)
    else:
        bad = ~col.str.contains(_DECIMAL_RE) | (_digits(col) <= 0)  # all zeros
    return _format_check(name, bad, optional, Code.FORENSICS_BAD_DECIMAL,
                         f"{name!r} must be a positive decimal like 99.95 with at most {MAX_DECIMALS} decimals")


def _integer_check(source: _Source, name: str, optional: bool = False) -> tuple[pl.Expr, Refusal]:
    col = pl.col(name)
    value = col.cast(pl.Int64, strict=False)
    bad = value.is_null() | (value <= 0)
    if name not in source.typed:
        bad = bad | col.str.contains("[^0-9]")
    return _format_check(name, bad, optional, Code.FORENSICS_BAD_INTEGER,
                         f"{name!r} must be a whole number greater than zero")


def _parsed(name: str) -> str:
    """Name of the helper column holding a column parsed once: a timestamp (µs since the epoch)
    or a date."""
    return f"\x00{name}"


def _timestamp_check(name: str, optional: bool = False) -> tuple[pl.Expr, Refusal]:
    return _format_check(name, pl.col(_parsed(name)).is_null(), optional, Code.FORENSICS_BAD_TIMESTAMP,
                         f"{name!r} must be an ISO 8601 timestamp with an offset, e.g. 2025-03-04T15:02:00-05:00")


def _day(source: _Source, name: str) -> pl.Expr:
    """A date column as days since 1970-01-01 (null where it is not a date); a text column is
    the date parsed once by :func:`_validated` (``parsed_dates``)."""
    col = pl.col(name) if name in source.typed else pl.col(_parsed(name))
    return col.cast(pl.Int32).alias("day")


def _date_check(source: _Source, name: str) -> tuple[pl.Expr, Refusal]:
    col = pl.col(name)
    bad = pl.lit(False) if name in source.typed else (
        (col.str.len_bytes() != 10) | pl.col(_parsed(name)).is_null())
    return bad, Refusal(Code.FORENSICS_BAD_DATE, name, f"{name!r} must be a date YYYY-MM-DD")




def _key_type() -> pl.Categorical:
    """Categorical codes with a mapping of their own: four bytes a row instead of the text,
    filled in the streaming pass (the codes follow the order rows were seen)."""
    return pl.Categorical(pl.Categories.random())


def _categorical(source: _Source, name: str) -> pl.Expr:
    """A text column as categorical codes (as it is, if it was parsed into them)."""
    col = pl.col(name)
    if isinstance(source.frame.collect_schema()[name], pl.Categorical):
        return col
    return col.cast(_key_type())


Codes = tuple[I32, pl.Series]


def _physical(series: pl.Series) -> Codes:
    """Codes of a text column (-1 for null) and the name of each code, in any order. A
    categorical column is read as it is: its four-byte codes, not its text."""
    if not isinstance(series.dtype, pl.Categorical):
        series = series.cast(pl.String).cast(pl.Categorical(pl.Categories.random()))
    assert isinstance(series.dtype, pl.Categorical)
    names = series.dtype.categories.to_series()
    physical = series.to_physical()
    if physical.null_count():  # the largest UInt32 is -1 as an Int32
        physical = physical.fill_null(np.iinfo(np.uint32).max)
    codes: I32 = physical.to_numpy().view(np.int32)
    return codes, names


def _dense(coded: Codes, keep: Bool | None = None) -> tuple[I32, list[str]]:
    """Dense integer codes of a text column over the rows ``keep`` (all by default; -1 for
    null), names sorted so that the codes do not depend on row order. One hash pass (the
    categorical codes) and a sort of the distinct names only."""
    codes, names = coded
    if keep is not None:
        codes = codes[keep]
    present = np.zeros(len(names) + 1, dtype=np.bool_)  # the last slot: code -1, a null
    present[codes] = True
    used = np.flatnonzero(present[:-1])
    used_names = names.gather(used)
    order = used_names.arg_sort().to_numpy()
    rank = np.full(len(names) + 1, -1, dtype=np.int32)
    rank[used[order]] = np.arange(used.size, dtype=np.int32)
    dense: I32 = rank[codes]
    return dense, used_names.gather(order).to_list()


def _repeats(first: Codes, second: Codes) -> Bool:
    """Rows whose pair of codes repeats an earlier row's (the first one is kept); an absent
    value is a key of its own. Where the pairs fit a table a few times the number of rows, one
    pass marks the pairs seen — when there are as many as rows, none repeats —, else the rows
    are counted per pair and only those sharing one are sorted; a larger space is hashed."""
    width = len(second[1]) + 1
    key = (first[0].astype(np.int64) + 1) * width + second[0] + 1
    space = (len(first[1]) + 1) * width
    if space > 4 * key.size + 1024:
        hashed: Bool = ~pl.Series(key).is_first_distinct().to_numpy()
        return hashed
    repeated = np.zeros(key.size, dtype=np.bool_)
    seen = np.zeros(space, dtype=np.bool_)
    seen[key] = True
    if np.count_nonzero(seen) == key.size:
        return repeated
    del seen
    rows = np.flatnonzero(np.bincount(key, minlength=space)[key] > 1)
    if rows.size:
        rows = rows[np.argsort(key[rows], kind="stable")]
        repeated[rows[1:]] = key[rows[1:]] == key[rows[:-1]]
    return repeated


def _duplicates(codes: tuple[Codes, Codes], name: str, what: str) -> tuple[Bool, Refusal]:
    """Rows whose pair of key columns repeats an earlier row's (such rows with an empty key
    were refused as empty before this counts)."""
    return _repeats(*codes), Refusal(Code.FORENSICS_DUPLICATE_ROW, name,
                                     f"another row already has the same {what}")


def _decimal_parts(source: _Source, name: str) -> list[pl.Expr]:
    """A validated decimal column as its digits (the point removed) and its number of decimals."""
    col = pl.col(name)
    if name in source.typed:
        scale = source.frame.collect_schema()[name].scale or 0  # type: ignore[attr-defined]
        return [(col * 10**scale).cast(pl.Int64, strict=False).alias(f"{name}.digits"),
                pl.lit(scale, pl.Int8).alias(f"{name}.decimals")]
    return [
        _digits(col).alias(f"{name}.digits"),
        (col.str.len_bytes() - col.str.find(".", literal=True) - 1).fill_null(0).cast(pl.Int8)
        .alias(f"{name}.decimals"),
    ]


def _scaled(frame: pl.DataFrame, name: str, scale: int) -> I64:
    """Exact integer value of a validated decimal column times ``10**scale``."""
    digits = frame[f"{name}.digits"].to_numpy().astype(np.int64, copy=False)
    decimals = frame[f"{name}.decimals"].to_numpy()
    powers = np.power(np.int64(10), np.arange(scale, -1, -1, dtype=np.int64))  # by decimals
    scaled: I64 = digits * powers[decimals]
    return scaled


def _decimal_scale(frame: pl.DataFrame, name: str) -> int:
    """Largest number of decimals used in a (validated) decimal column."""
    return int(frame[f"{name}.decimals"].max() or 0) if frame.height else 0  # type: ignore[arg-type]


def _int_or_missing(frame: pl.DataFrame, name: str) -> I64:
    values: I64 = frame[name].fill_null(MISSING).to_numpy().astype(np.int64, copy=False)
    return values


def _side(coded: Codes) -> I8:
    """+1 for a buy, -1 for a sale (0 otherwise) per row, from the side's distinct names."""
    codes, names = coded
    table = np.array([SIDES.get(name, 0) for name in names.to_list()] + [0], dtype=np.int8)
    side: I8 = table[codes]
    return side


def _with_optional(source: _Source, names: Iterable[str]) -> _Source:
    """The source with absent optional columns added as empty ones."""
    absent = [pl.lit(None, pl.String).alias(n) for n in names if n not in source.columns]
    if not absent:
        return source
    return replace(source, frame=source.frame.with_columns(absent))


@dataclass
class _Read:
    """A validated file: its kept rows (typed columns and text keys) and its tally."""

    frame: pl.DataFrame
    tally: FileTally
    keys: dict[str, tuple[I32, list[str]]] = field(default_factory=dict)
    side: I8 = field(default_factory=lambda: np.zeros(0, dtype=np.int8))  # +1 buy, -1 sale


def _read_allocations(path: pathlib.Path, strict: bool) -> tuple[_Read, list[str]]:
    keys = ("order_id", "account", "symbol", "side", "allocated_by")
    source = _open(path, lambda name: name in keys or name.startswith("attr."))
    _check_header(source, ALLOCATION_REQUIRED)
    source = _with_optional(source, ALLOCATION_OPTIONAL)
    attributes = [name for name in source.columns if name.startswith("attr.")]
    checks = [_required_key(name) if name in TEXT_COLUMNS else _required(name)
              for name in ALLOCATION_REQUIRED]
    checks += [
        _date_check(source, "trade_date"),
        (
            _ByName("side", ~pl.col("side").is_in(list(SIDES))),
            Refusal(Code.FORENSICS_BAD_SIDE, "side", "'side' must be buy, sell or sell_short"),
        ),
        _integer_check(source, "quantity"),
        _decimal_check(source, "price"),
        _timestamp_check("allocated_at"),
    ]
    checks.append(_timestamp_check("executed_at", optional=True))
    checks += [
        _integer_check(source, name, optional=True)
        for name in ("intended", "order_quantity", "order_filled")
    ]
    outputs = [
        *[_categorical(source, n) for n in keys],
        _day(source, "trade_date"),
        pl.col("quantity").cast(pl.Int64, strict=False),
        *_decimal_parts(source, "price"),
        pl.col(_parsed("allocated_at")).alias("allocated_at"),
        pl.col(_parsed("executed_at")).alias("executed_at"),
        *[pl.col(n).cast(pl.Int64, strict=False) for n in ("intended", "order_quantity", "order_filled")],
        *[_categorical(source, n) for n in attributes],
    ]
    frame = _validated(source, checks, outputs, True, ("allocated_at", "executed_at"),
                       ("trade_date",))
    coded = {name: _physical(frame[name]) for name in keys}
    duplicates = _duplicates((coded["order_id"], coded["account"]), "account",
                             "order_id and account")
    tally, keep = _tally(source, frame, checks, strict, duplicates, coded)
    _require_usable(path, tally)
    kept = keep if tally.refused else None
    side = _side(coded.pop("side"))
    dense = {name: _dense(codes, kept) for name, codes in coded.items()}
    frame = frame.drop(keys)
    if tally.refused:
        frame, side = frame.filter(pl.Series(keep)), side[keep]
    return _Read(frame, tally, dense, side), attributes


def read_allocations(
    path: pathlib.Path, strict: bool = False
) -> tuple[pl.DataFrame, FileTally, list[str]]:
    """Read and validate ``allocations.csv``; return kept rows (typed), tally and attribute names."""
    read, attributes = _read_allocations(path, strict)
    return read.frame.with_columns(pl.Series("side", read.side)), read.tally, attributes


def read_closes(path: pathlib.Path, strict: bool = False) -> tuple[pl.DataFrame, FileTally]:
    """Read and validate ``prices.csv``; a repeated (symbol, date) row is refused."""
    source = _open(path)
    _check_header(source, PRICE_REQUIRED)
    checks = [_required(name) for name in PRICE_REQUIRED]
    checks += [_date_check(source, "date"), _decimal_check(source, "close")]
    outputs = [
        pl.col("symbol"), pl.col("date"),
        _day(source, "date"),
        *_decimal_parts(source, "close"),
    ]
    frame = _validated(source, checks, outputs, True, (), ("date",))
    duplicates = _duplicates((_physical(frame["symbol"]), _physical(frame["date"])), "date",
                             "symbol and date")
    tally, keep = _tally(source, frame, checks, strict, duplicates)
    _require_usable(path, tally)
    return (frame.filter(pl.Series(keep)) if tally.refused else frame), tally


def read_overrides(path: pathlib.Path, strict: bool = False) -> tuple[pl.DataFrame, FileTally]:
    """Read and validate ``overrides.csv`` (memos may span lines inside quotes); a header with no
    rows is a firm without overrides."""
    source = _open(path)
    _check_header(source, OVERRIDE_REQUIRED)
    checks = [_required(name) for name in ("order_id", "account", "recorded_at", "recorded_by")]
    checks.append(_timestamp_check("recorded_at"))
    outputs = [pl.col(n) for n in OVERRIDE_REQUIRED if n != "recorded_at"]
    outputs.append(pl.col(_parsed("recorded_at")).alias("recorded_at"))
    frame = _validated(source, checks, outputs, False, ("recorded_at",))
    tally, keep = _tally(source, frame, checks, strict)
    return (frame.filter(pl.Series(keep)) if tally.refused else frame), tally


def _attribute_table(
    frame: pl.DataFrame, names: list[str], account: I32, count: int
) -> dict[str, list[str | None]]:
    """One value per account and attribute: the account's last non-empty value in the file.

    One group-by on the integer account codes for all attributes (rows keep their order within
    a group), without index arrays the size of the file.
    """
    table: dict[str, list[str | None]] = {}
    if not names:
        return table
    key = "\x00account"
    last = (frame.select(names).with_columns(pl.Series(key, account))
            .group_by(key).agg(pl.col(names).drop_nulls().last()))
    codes = last[key].to_list()
    for name in names:
        values: list[str | None] = [None] * count
        for code, value in zip(codes, last[name].to_list(), strict=True):
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
    read, attr_names = _read_allocations(allocations_path, strict)
    close_frame, close_tally = read_closes(prices_path, strict)
    rows = read.frame
    scale = max(_decimal_scale(rows, "price"), _decimal_scale(close_frame, "close"))
    order, order_ids = read.keys["order_id"]
    account, accounts = read.keys["account"]
    symbol, symbols = read.keys["symbol"]
    person, people = read.keys["allocated_by"]
    allocations = Allocations(
        order=order,
        order_ids=order_ids,
        trade_day=rows["day"].to_numpy().astype(np.int32, copy=False),
        symbol=symbol,
        symbols=symbols,
        side=read.side,
        account=account,
        accounts=accounts,
        quantity=rows["quantity"].to_numpy().astype(np.int64, copy=False),
        price=_scaled(rows, "price", scale),
        allocated_at=_int_or_missing(rows, "allocated_at"),
        executed_at=_int_or_missing(rows, "executed_at"),
        intended=_int_or_missing(rows, "intended"),
        order_quantity=_int_or_missing(rows, "order_quantity"),
        order_filled=_int_or_missing(rows, "order_filled"),
        allocated_by=person,
        people=people,
        attributes=_attribute_table(rows, attr_names, account, len(accounts)),
        price_scale=scale,
    )
    tallies = [read.tally, close_tally]
    del rows, read
    closes = Closes(
        symbol=close_frame["symbol"].to_list(),
        day=close_frame["day"].to_numpy().astype(np.int32),
        close=_scaled(close_frame, "close", scale),
    )
    overrides: Overrides | None = None
    if overrides_path is not None:
        over_frame, over_tally = read_overrides(overrides_path, strict)
        tallies.append(over_tally)
        overrides = _code_overrides(over_frame, order_ids, accounts)
    return History(allocations, closes, overrides, tallies)


def _code_overrides(frame: pl.DataFrame, order_ids: list[str], accounts: list[str]) -> Overrides:
    order_index = {name: i for i, name in enumerate(order_ids)}
    account_index = {name: i for i, name in enumerate(accounts)}
    return Overrides(
        order=np.array([order_index.get(o, -1) for o in frame["order_id"]], dtype=np.int32),
        account=np.array([account_index.get(a, -1) for a in frame["account"]], dtype=np.int32),
        recorded_at=_int_or_missing(frame, "recorded_at"),
        recorded_by=[str(v) for v in frame["recorded_by"]],
        reason_code=[str(v) if v is not None else "" for v in frame["reason_code"]],
        memo=[str(v) if v is not None else "" for v in frame["memo"]],
    )
