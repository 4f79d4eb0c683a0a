"""FIX 4.4 tag=value framing: a strict reader and a writer, one message per line.

The reader checks what a FIX engine checks before it looks at a message's meaning — BeginString
``8=FIX.4.4`` first, BodyLength ``9`` second and equal to the bytes it counts, MsgType ``35``
third, CheckSum ``10`` last and equal to the byte sum modulo 256, every field ``tag=value`` with a
positive tag and a non-empty value, no tag twice outside a repeating group, the header fields the
dictionary requires — and it reads the repeating groups of the messages this adapter maps by the
FIX 4.4 dictionary's definitions (:data:`GROUPS`): an entry starts with the group's first field,
and an entry count that does not match the entries is refused. Every problem is a
:class:`~fairalloc.errors.Diagnostic` located at the message's line, the field's column and its
tag.

Fields are kept as text; :mod:`fairalloc.fix.mapping` gives them their types. Lines are SOH
(``\\x01``) delimited; a line without SOH may use ``|`` instead (hand-written files), and is read
as if each ``|`` were SOH — BodyLength and CheckSum included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from fairalloc.errors import Diagnostic, FileAccessError, InputError, Location

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"
MAX_MESSAGE = 16 * 1024 * 1024
"""The longest message line read, in bytes (a 35=D of some 400,000 accounts)."""
MAX_FILE = 1024 * 1024 * 1024
MAX_ERRORS = 50
"""Problems reported before the reader stops: a file of garbage yields a bounded report."""

HEADER_REQUIRED = (49, 56, 34, 52)
"""SenderCompID, TargetCompID, MsgSeqNum, SendingTime: the dictionary's required header fields
besides the framing (8, 9, 35, 10)."""


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A repeating group as the dictionary defines it: its first field (which starts each entry),
    its other fields, and the groups nested in an entry (by their count tag)."""

    first: int
    fields: frozenset[int]
    nested: dict[int, GroupSpec] = field(default_factory=dict)


def _group(first: int, *others: int, nested: dict[int, GroupSpec] | None = None) -> GroupSpec:
    nested = nested or {}
    return GroupSpec(first, frozenset((first, *others, *nested)), nested)


# FIX 4.4 components (names as in the dictionary), only those of the messages mapped here.
_PTYS_SUB = _group(523, 803)  # PtysSubGrp: PartySubID, PartySubIDType
_PARTIES = {453: _group(448, 447, 452, nested={802: _PTYS_SUB})}  # Parties
_NESTED_PARTIES = {539: _group(524, 525, 538, nested={804: _group(545, 805)})}  # NestedParties
_NESTED_PARTIES2 = {756: _group(757, 758, 759, nested={806: _group(760, 807)})}  # NestedParties2
_SEC_ALT_ID = {454: _group(455, 456)}  # SecAltIDGrp (in Instrument)
_MISC_FEES = {136: _group(137, 138, 139, 891)}  # MiscFeesGrp
_HOPS = {627: _group(628, 629, 630)}  # the standard header's NoHops

_PRE_ALLOC = _group(79, 661, 736, 467, 80, nested=_NESTED_PARTIES)  # PreAllocGrp (35=D)
_ORD_ALLOC = _group(11, 37, 198, 526, 66, 38, 799, 800, nested=_NESTED_PARTIES2)  # OrdAllocGrp
_EXEC_ALLOC = _group(32, 17, 527, 31, 669, 29)  # ExecAllocGrp
_ALLOC = _group(  # AllocGrp (35=J, 35=AS), without the settlement-instruction groups
    79, 661, 573, 366, 80, 467, 81, 208, 209, 161, 360, 361, 12, 13, 479, 497, 153, 154, 119, 737,
    120, 736, 155, 156, 742, 741, 780, 172, 169, 170, 171,
    nested={**_NESTED_PARTIES, **_MISC_FEES, 576: _group(577)},
)
_ALLOC_ACK = _group(79, 661, 366, 467, 776, 161, 360, 361)  # AllocAckGrp (35=P)
_CONTRA = {382: _group(375, 337, 437, 438, 655)}  # ContraGrp

_ALLOCATION = {**_PARTIES, **_SEC_ALT_ID, 73: _ORD_ALLOC, 124: _EXEC_ALLOC, 78: _ALLOC}
GROUPS: dict[str, dict[int, GroupSpec]] = {
    "D": {**_PARTIES, **_SEC_ALT_ID, 78: _PRE_ALLOC},
    "8": {**_PARTIES, **_SEC_ALT_ID, **_CONTRA, **_MISC_FEES},
    "J": _ALLOCATION,
    "AS": _ALLOCATION,
    "P": {**_PARTIES, 78: _ALLOC_ACK},
}
"""The repeating groups read in each message type, by count tag (besides the header's NoHops).
Another message type is read with the header's groups only."""


class Entry(NamedTuple):
    """A message's fields, or one entry of a repeating group: values by tag, groups by count tag,
    and where each field is in its message — ``origin``, the index of the first field of an entry
    whose fields are contiguous, else each field's index by tag — from which a problem's column
    is counted (only a problem needs it)."""

    fields: dict[int, str]
    groups: dict[int, tuple[Entry, ...]]
    origin: int | dict[int, int]

    def get(self, tag: int) -> str | None:
        return self.fields.get(tag)

    def group(self, tag: int) -> tuple[Entry, ...]:
        return self.groups.get(tag, ())

    def position(self, tag: int) -> int | None:
        """The index of ``tag``'s field in the message (MsgType 35 is 0), if the entry has it."""
        if tag not in self.fields:
            return None
        if isinstance(self.origin, int):
            return self.origin + list(self.fields).index(tag)
        return self.origin.get(tag)


@dataclass(frozen=True, slots=True)
class Message:
    """One framed, checked FIX message and where it came from."""

    msg_type: str
    body: Entry
    file: str
    line: int
    raw: bytes  # as read, with SOH delimiters (a ``|`` line is converted)

    def get(self, tag: int) -> str | None:
        return self.body.fields.get(tag)

    def where(self, tag: int | None = None, entry: Entry | None = None) -> Location:
        """The location of ``tag`` in this message (in ``entry`` when given), or of the message."""
        target = entry or self.body
        index = None
        if tag is not None:
            index = _FRAMING[tag] if target is self.body and tag in _FRAMING else target.position(tag)
        return Location(self.file, self.line, None if index is None else column(self.raw, index), tag=tag)


CHECKSUM_INDEX = -3
_FRAMING = {8: -2, 9: -1, 10: CHECKSUM_INDEX}
"""The indices of the framing fields: BeginString -2, BodyLength -1 (the body's fields count from
MsgType, 0) and CheckSum."""


def column(raw: bytes, index: int) -> int:
    """The 1-based byte column of the field at ``index`` (see :data:`CHECKSUM_INDEX`) in a framed
    message: counted on demand, as only a problem needs it."""
    if index == CHECKSUM_INDEX:
        return len(raw) - len(b"10=000")
    position = 0
    for _ in range(index + 2):
        position = raw.index(SOH, position) + 1
    return position + 1


def checksum(data: bytes) -> str:
    """The CheckSum 10 of the bytes before it: their sum modulo 256, three digits."""
    return f"{sum(data) % 256:03d}"


def encode(msg_type: str, header: list[tuple[int, str]], body: list[tuple[int, str]]) -> bytes:
    """A complete message: BeginString, BodyLength, MsgType, ``header``, ``body``, CheckSum."""
    pairs = (*header, *body)
    text = "\x01".join([f"35={msg_type}", *[f"{tag}={value}" for tag, value in pairs], ""])
    if "\n" in text or text.count("\x01") != len(pairs) + 1 or not all(value for _, value in pairs):
        bad = next((tag, value) for tag, value in pairs if not value or "\x01" in value or "\n" in value)
        raise ValueError(f"tag {bad[0]}: a FIX value is non-empty and has no SOH or newline: {bad[1]!r}")
    content = text.encode()
    framed = f"8={BEGIN_STRING}\x019={len(content)}\x01".encode() + content
    return framed + f"10={checksum(framed)}\x01".encode()


_TRAILER = re.compile(rb"\x0110=([0-9]{3})\x01\Z")


class _Refused(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def read_file(path: str) -> bytes:
    """The bytes of a messages file, bounded, or :class:`FileAccessError` saying why not."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as error:
        code = "file-not-found" if isinstance(error, FileNotFoundError) else "file-unreadable"
        raise FileAccessError(Diagnostic(code, f"cannot read {path}: {error.strerror}", Location(path))) from None
    if len(data) > MAX_FILE:
        raise InputError(Diagnostic("fix-file-too-large", f"{path} is larger than {MAX_FILE} bytes",
                                    Location(path)))
    return data


def read_messages(data: bytes, file: str) -> list[Message]:
    """Every message of a file (one per line; blank lines and lines starting with ``#`` skipped).

    Raises :class:`InputError` with every framing problem found (up to :data:`MAX_ERRORS`)."""
    messages: list[Message] = []
    problems: list[Diagnostic] = []
    for number, line in _lines(data):
        try:
            messages.append(parse_message(line, file, number))
        except _Refused as refused:
            problems.append(refused.diagnostic)
            if len(problems) >= MAX_ERRORS:
                break
    if problems:
        raise InputError(problems)
    return messages


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.removesuffix(b"\r")
        if line.strip() and not line.startswith(b"#"):
            yield number, line


def parse_message(line: bytes, file: str = "<fix>", number: int = 1) -> Message:
    """Frame, check and read one message; :class:`_Refused` (an internal signal) on a problem."""
    def refuse(code: str, message: str, tag: int | None, column: int | None, hint: str | None = None) -> _Refused:
        return _Refused(Diagnostic(code, message, Location(file, number, column, tag=tag), hint))

    if len(line) > MAX_MESSAGE:
        raise refuse("fix-message-too-long", f"message longer than {MAX_MESSAGE} bytes", None, None)
    if SOH not in line and b"|" in line:
        line = line.replace(b"|", SOH)
    begin = f"8={BEGIN_STRING}".encode() + SOH
    if not line.startswith(begin):
        raise refuse("fix-begin-string", f"a message starts with BeginString 8={BEGIN_STRING}", 8, 1,
                     "this adapter reads FIX 4.4, one message per line")
    length_end = line.find(SOH, len(begin))
    length_field = line[len(begin):length_end] if length_end > 0 else b""
    if not re.fullmatch(rb"9=(0|[1-9][0-9]{0,8})", length_field):
        raise refuse("fix-body-length", "the second field must be BodyLength 9=<bytes>", 9, len(begin) + 1)
    trailer = _TRAILER.search(line)
    if trailer is None:
        raise refuse("fix-checksum-missing", "a message ends with CheckSum 10=<three digits> and SOH", 10,
                     None, "the last field is 10=NNN, followed by the delimiter")
    body_start, body_end = length_end + 1, trailer.start() + 1
    declared = int(length_field[2:])
    if declared != body_end - body_start:
        raise refuse("fix-body-length", f"BodyLength 9={declared} but the body has {body_end - body_start} bytes",
                     9, len(begin) + 1, "BodyLength counts from after its own delimiter up to the CheckSum field")
    expected = checksum(line[:body_end])
    if trailer.group(1).decode() != expected:
        raise refuse("fix-checksum", f"CheckSum 10={trailer.group(1).decode()} but the message's bytes sum to "
                     f"{expected} (modulo 256)", 10, body_end + 1)
    pairs = _split(line, body_start, body_end, refuse)
    if not pairs or pairs[0][0] != 35:
        raise refuse("fix-msg-type", "the third field must be MsgType 35", 35, body_start + 1)
    msg_type = pairs[0][1]
    groups = {**_HOPS, **GROUPS.get(msg_type, {})}
    body = _GroupReader(pairs, line, refuse).message(groups)
    top = body.fields
    top[8], top[9], top[10] = BEGIN_STRING, str(declared), trailer.group(1).decode()
    for tag in HEADER_REQUIRED:
        if tag not in top:
            raise refuse("fix-missing-tag", f"35={msg_type} lacks required header field {tag}", tag, None)
    return Message(msg_type, body, file, number, bytes(line))


_FIELDS = re.compile(r"(?:[1-9][0-9]{0,8}=[^\x01]+\x01)+")
_PAIR = re.compile(r"([0-9]+)=([^\x01]*)\x01")
_FIELD = re.compile(r"([1-9][0-9]{0,8})=([^\x01]+)\x01")


def _split(line: bytes, start: int, end: int, refuse: _RefuseFn) -> list[tuple[int, str]]:
    """The (tag, value) fields between ``start`` and ``end`` (which ends with a delimiter).

    One regular-expression pass checks every field's syntax and another splits them, both in C;
    only a line that fails the check is walked field by field, to locate the bad one."""
    try:
        text = line[:end].decode("utf-8")
    except UnicodeDecodeError as error:
        raise refuse("fix-encoding", "a field's value is not UTF-8 text", None, error.start + 1) from None
    if _FIELDS.fullmatch(text, start):
        return [(int(tag), value) for tag, value in _PAIR.findall(text, start)]
    position = start
    for match in _FIELD.finditer(text, start):
        if match.start() != position:
            break
        position = match.end()
    raw = text[position:text.find("\x01", position)]
    tag_text = raw.partition("=")[0]
    found = int(tag_text) if tag_text.isdigit() and len(tag_text) < 10 else None
    raise refuse("fix-field-syntax", f"not a tag=value field: {raw[:40]!r}", found,
                 len(text[:position].encode()) + 1, "a field is a positive tag, '=', and a non-empty value")


class _RefuseFn(Protocol):
    def __call__(self, code: str, message: str, tag: int | None, column: int | None,
                 hint: str | None = None) -> _Refused: ...


class _GroupReader:
    """Reads a flat field list into an :class:`Entry` tree by the dictionary's group definitions."""

    def __init__(self, pairs: list[tuple[int, str]], line: bytes, refuse: _RefuseFn) -> None:
        self.pairs = pairs
        self.line = line
        self.position = 0
        self.refuse = refuse

    def message(self, groups: dict[int, GroupSpec]) -> Entry:
        """The message's own fields (every field not in a group) and its groups."""
        pairs = self.pairs
        own = dict(pairs)
        if len(own) == len(pairs) and groups.keys().isdisjoint(own):  # no group, no tag twice: at once
            self.position = len(pairs)
            return Entry(own, {}, 0)
        own = {}
        indices: dict[int, int] = {}
        nested: dict[int, tuple[Entry, ...]] = {}
        index, count = 0, len(pairs)
        while index < count:
            tag, value = pairs[index]
            if tag in own:
                raise self.refuse("fix-duplicate-tag", f"tag {tag} appears twice", tag, column(self.line, index),
                                  "outside a repeating group a field appears once")
            own[tag] = value
            indices[tag] = index
            index += 1
            if tag in groups:
                self.position = index
                nested[tag] = self.group(tag, value, index - 1, groups[tag])
                index = self.position
        return Entry(own, nested, indices)

    def entry(self, spec: GroupSpec) -> Entry:
        """One entry of a group (the reader is at its first field): the group's fields until one
        repeats (the next entry starts) or does not belong (the group ends)."""
        own: dict[int, str] = {}
        indices: dict[int, int] = {}
        nested: dict[int, tuple[Entry, ...]] = {}
        pairs, count, members, groups = self.pairs, len(self.pairs), spec.fields, spec.nested
        index = self.position
        while index < count:
            tag, value = pairs[index]
            if tag in own or tag not in members:
                break
            own[tag] = value
            indices[tag] = index
            index += 1
            if tag in groups:
                self.position = index
                nested[tag] = self.group(tag, value, index - 1, groups[tag])
                index = self.position
        self.position = index
        return Entry(own, nested, indices)

    def group(self, tag: int, value: str, index: int, spec: GroupSpec) -> tuple[Entry, ...]:
        if not _COUNT.fullmatch(value):
            raise self.refuse("fix-group-count", f"group count {tag}={value!r} is not a number",
                              tag, column(self.line, index))
        expected = int(value)
        entries = self._simple_entries(spec)
        if entries is None:
            entries = []
            pairs, count = self.pairs, len(self.pairs)
            while self.position < count and pairs[self.position][0] == spec.first:
                entries.append(self.entry(spec))
                if len(entries) > expected:
                    break
        if len(entries) != expected:
            found = min(len(entries), expected + 1)
            raise self.refuse(
                "fix-group-count",
                f"group {tag} says {expected} entr{'y' if expected == 1 else 'ies'} but "
                f"{'more than ' if found > expected else ''}{found} follow",
                tag, column(self.line, index), f"each entry starts with tag {spec.first}; the count must match")
        return tuple(entries)

    def _simple_entries(self, spec: GroupSpec) -> list[Entry] | None:
        """The group's entries at once when they are simple — contiguous runs of the group's own
        fields, each starting with its first field, none with a nested group or a tag twice —
        which is what :meth:`entry` reads from them; None (read them field by field) otherwise."""
        pairs, count, members, first = self.pairs, len(self.pairs), spec.fields, spec.first
        start = end = self.position
        starts: list[int] = []
        while end < count:
            tag = pairs[end][0]
            if tag not in members or tag in spec.nested:
                break
            if tag == first:
                starts.append(end)
            end += 1
        if end < count and pairs[end][0] in spec.nested:
            return None
        if not starts or starts[0] != start:
            return [] if not starts and start == end else None
        entries: list[Entry] = []
        for at, until in zip(starts, [*starts[1:], end]):
            own = dict(pairs[at:until])
            if len(own) != until - at:
                return None
            entries.append(Entry(own, {}, at))
        self.position = end
        return entries

_COUNT = re.compile(r"0|[1-9][0-9]{0,6}")
