"""The tag=value reader and writer: framing, integrity, groups, located refusals, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.errors import InputError
from fairalloc.fix.codec import Entry, Message, _GroupReader, checksum, encode, parse_message, read_messages
from fairalloc.fix.mapping import Book

from .conftest import assert_valid, simplefix_pairs
from .messages import ACCOUNTS, execution, new_order, with_bad_checksum


def refusal(data: bytes) -> tuple[str, int | None, int | None]:
    """(code, line, tag) of the first problem reading ``data``."""
    with pytest.raises(InputError) as caught:
        read_messages(data, "m.fix")
    first = caught.value.diagnostics[0]
    assert first.location.file == "m.fix"
    return first.code, first.location.line, first.location.tag


def test_reads_a_library_built_order_with_its_groups() -> None:
    (message,) = read_messages(new_order() + b"\n", "m.fix")
    assert message.msg_type == "D" and message.get(11) == "XYZ-BLOCK-1"
    allocs = message.body.group(78)
    assert [(e.get(79), e.get(80)) for e in allocs] == [
        ("CLIENT-A", "25000"), ("CLIENT-B", "10000"), ("CLIENT-C", "5000"), ("PROPRIETARY", "10000")]


def test_pipe_delimited_hand_written_line_reads_as_if_soh() -> None:
    soh = new_order()
    (message,) = read_messages(soh.replace(b"\x01", b"|") + b"\n", "m.fix")
    assert message.raw == soh


def test_blank_and_comment_lines_are_skipped_and_lines_counted() -> None:
    data = b"# the worked example\n\n" + with_bad_checksum(new_order()) + b"\n"
    assert refusal(data) == ("fix-checksum", 3, 10)


def test_wrong_body_length_is_refused_at_tag_9() -> None:
    message = new_order().replace(b"\x019=243\x01", b"\x019=244\x01")
    assert b"9=244" in message
    assert refusal(message) == ("fix-body-length", 1, 9)


def test_missing_checksum_and_begin_string() -> None:
    message = new_order()
    assert refusal(message[: message.rindex(b"10=")]) == ("fix-checksum-missing", 1, 10)
    assert refusal(message.replace(b"FIX.4.4", b"FIX.4.2"))[0] == "fix-begin-string"


def test_every_bad_line_is_reported_not_just_the_first() -> None:
    bad = with_bad_checksum(new_order())
    with pytest.raises(InputError) as caught:
        read_messages(bad + b"\n" + new_order() + b"\n" + bad + b"\n", "m.fix")
    assert [(d.code, d.location.line) for d in caught.value.diagnostics] == [("fix-checksum", 1), ("fix-checksum", 3)]


def reframed(msg_type: str, fields: list[tuple[int, str]]) -> bytes:
    return encode(msg_type, [(49, "A"), (56, "B"), (34, "1"), (52, "20260302-14:30:00")], fields)


def test_group_count_not_matching_its_entries_is_refused() -> None:
    fewer = reframed("D", [(11, "O"), (78, "3"), (79, "A"), (80, "1"), (79, "B"), (80, "2"), (55, "X")])
    more = reframed("D", [(11, "O"), (78, "1"), (79, "A"), (80, "1"), (79, "B"), (80, "2"), (55, "X")])
    assert refusal(fewer) == ("fix-group-count", 1, 78)
    assert refusal(more) == ("fix-group-count", 1, 78)


def test_entry_must_start_with_the_groups_first_field() -> None:
    # AllocQty before AllocAccount: the entry does not start with its delimiter
    message = reframed("D", [(11, "O"), (78, "1"), (80, "1"), (79, "A")])
    assert refusal(message) == ("fix-group-count", 1, 78)


def test_duplicate_tag_outside_a_group_and_bad_fields() -> None:
    assert refusal(reframed("D", [(11, "O"), (11, "P")])) == ("fix-duplicate-tag", 1, 11)
    message = reframed("D", [(11, "O")]).replace(b"11=O", b"11=")  # framing redone below
    body = message[message.index(b"35="):message.rindex(b"10=")]
    head = b"8=FIX.4.4\x019=" + str(len(body)).encode() + b"\x01" + body
    assert refusal(head + b"10=" + checksum(head).encode() + b"\x01") == ("fix-field-syntax", 1, 11)


def test_missing_required_header_field() -> None:
    message = encode("D", [(49, "A"), (56, "B"), (52, "20260302-14:30:00")], [(11, "O")])
    assert refusal(message) == ("fix-missing-tag", 1, 34)


def test_column_points_at_the_field() -> None:
    message = with_bad_checksum(new_order())
    with pytest.raises(InputError) as caught:
        read_messages(message, "m.fix")
    column = caught.value.diagnostics[0].location.column
    assert column is not None and message[column - 1:].startswith(b"10=")


_TEXT = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="|="),
                min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(cl_ord_id=_TEXT, accounts=st.lists(st.tuples(_TEXT, st.integers(1, 10**9)), min_size=1, max_size=6,
                                         unique_by=lambda pair: pair[0]))
def test_written_messages_round_trip_through_reader_and_libraries(cl_ord_id: str,
                                                                   accounts: list[tuple[str, int]]) -> None:
    fields = [(11, cl_ord_id), (78, str(len(accounts)))]
    for account, intended in accounts:
        fields += [(79, account), (80, str(intended))]
    fields += [(55, "XYZ"), (54, "1"), (60, "20260302-14:30:00"), (38, str(sum(q for _, q in accounts))),
               (40, "1")]
    written = reframed("D", fields)
    read = parse_message(written)
    assert [(e.get(79), e.get(80)) for e in read.body.group(78)] == [(a, str(q)) for a, q in accounts]
    assert read.raw == written
    pairs = simplefix_pairs(written)
    assert pairs[2:-1] == [(35, "D"), (49, "A"), (56, "B"), (34, "1"), (52, "20260302-14:30:00"), *fields]
    decoded = assert_valid(written)
    assert [entry["AllocAccount"] for entry in decoded["NoAllocs"]] == [a for a, _ in accounts]


def test_reader_agrees_with_simplefix_on_every_example_message() -> None:
    for message in (new_order(), execution("F-1", "F", last_qty="1", last_px="2", cum_qty="1", avg_px="2")):
        read = parse_message(message)
        pairs = simplefix_pairs(message)
        once = {tag: value for tag, value in pairs if [t for t, _ in pairs].count(tag) == 1}
        assert {tag: read.get(tag) for tag in once} == once
        assert [(e.get(79), e.get(80)) for e in read.body.group(78)] == [
            (v, pairs[i + 1][1]) for i, (t, v) in enumerate(pairs) if t == 79]


def test_values_are_utf8_text() -> None:
    fine = reframed("D", [(11, "O"), (58, "café")])
    assert parse_message(fine).get(58) == "café"
    broken = fine.replace("café".encode(), b"caf\xe9\xe9")  # same length: Latin-1, not UTF-8
    body_end = broken.rindex(b"10=")
    broken = broken[:body_end] + b"10=" + checksum(broken[:body_end]).encode() + b"\x01"
    assert refusal(broken)[0] == "fix-encoding"


def test_a_wrong_checksum_is_refused_at_tag_10_with_its_column() -> None:
    message = with_bad_checksum(new_order())
    with pytest.raises(InputError) as caught:
        read_messages(b"\n" + message + b"\n", "m.fix")
    (problem,) = caught.value.diagnostics
    assert (problem.code, problem.location.line, problem.location.tag) == ("fix-checksum", 2, 10)
    assert problem.location.column is not None and message[problem.location.column - 1:].startswith(b"10=")


def _entry_fields(entry: Entry, message: Message) -> object:
    """An entry as (tag, value, column) per field and its groups, however the reader stored them."""
    return ([(tag, value, message.where(tag, entry).column) for tag, value in entry.fields.items()],
            {tag: [_entry_fields(e, message) for e in entries] for tag, entries in entry.groups.items()})


_VALUES = st.sampled_from(["1", "2", "A", "x y"])
_NOISE = st.tuples(st.sampled_from([79, 80, 661, 467, 539, 524, 525, 538, 804, 545, 11, 55, 58]), _VALUES)
_ENTRY = st.tuples(st.just(79), _VALUES).flatmap(lambda first: st.lists(
    st.tuples(st.sampled_from([80, 661, 467]), _VALUES), max_size=3).map(lambda rest: [first, *rest]))


@st.composite
def _group_fields(draw: st.DrawFn) -> tuple[list[tuple[int, str]], int]:
    """NoAllocs entries, mostly well formed, with now and then a stray, nested or repeated field,
    and a count that mostly matches."""
    entries = draw(st.lists(_ENTRY, max_size=5))
    fields = [pair for entry in entries for pair in entry]
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        fields.insert(draw(st.integers(min_value=0, max_value=len(fields))), draw(_NOISE))
    return fields, max(0, len(entries) + draw(st.sampled_from([0, 0, 0, -1, 1])))


@settings(max_examples=200, deadline=None)
@given(_group_fields())
def test_reading_entries_at_once_reads_what_reading_field_by_field_does(
        group: tuple[list[tuple[int, str]], int]) -> None:
    """The reader takes a simple group's entries at once; it must read exactly what the field-by-field
    reading does — the same entries, values and columns, or the same refusal."""
    fields, count = group
    message = encode("D", [(49, "A"), (56, "B"), (34, "1"), (52, "20260302-14:30:00")],
                     [(11, "O"), (78, str(count)), *fields, (54, "1")])

    def outcome() -> object:
        try:
            read = parse_message(message)
        except Exception as error:  # the internal refusal signal
            diagnostic = getattr(error, "diagnostic")
            return diagnostic.code, diagnostic.message, diagnostic.location
        return _entry_fields(read.body, read)

    at_once = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_GroupReader, "_simple_entries", lambda self, spec: None)
        assert outcome() == at_once


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=3), st.sampled_from(["fix-bad-value", "fix-duplicate-account"]))
def test_a_refused_group_entry_is_located_at_its_own_field(index: int, code: str) -> None:
    """Whatever entry of NoAllocs is bad, the refusal names the tag and the column of that entry's field."""
    accounts = [list(pair) for pair in ACCOUNTS]
    if code == "fix-bad-value":
        accounts[index][1] = "1O0"
        tag, needle = 80, b"\x0180=1O0\x01"
    else:
        accounts[index][0] = accounts[index - 1 if index else 1][0]
        tag, needle = 79, None
    message = new_order(accounts=[(a, q) for a, q in accounts], quantity="50000")
    with pytest.raises(InputError) as caught:
        Book().read(read_messages(message + b"\n", "m.fix"))
    (problem,) = caught.value.diagnostics
    assert (problem.code, problem.location.tag) == (code, tag)
    column = problem.location.column
    assert column is not None
    if needle is not None:
        assert message.index(needle) + 2 == column
    else:
        starts = [i + 2 for i in range(len(message)) if message.startswith(b"\x0179=", i)]
        assert column == starts[max(index, 1)]
