"""The ledger's events as the leaves of an RFC 6962 Merkle tree, read from a ledger session.

**The leaf.** Event ``seq`` is leaf ``seq - 1``; its leaf data is the 32 bytes of the event's chain
hash, ``sha256(prev_hash + "\\n" + canonical)`` (see :mod:`fairalloc.ledger.chain`), so its leaf
hash is ``SHA-256(0x00 || chain hash)``. The chain hash covers every field of the event — its
number (its position), time, actor, kind, order, key, topic and payload — and the link to the event
before it: a leaf commits to the whole event and where it stands. Anyone holding an event's fields
can recompute its leaf without the database.

**Who computes what.** A checkpoint (:func:`build`) reads the chain hashes as stored, after checking
that the numbers run 1, 2, 3 … and that each event links to the hash before it; checking each
event's *content* against its hash is ``ledger verify``'s job (the close of day runs both).
Verification against a checkpoint (:func:`recomputed_root`) trusts nothing stored: it recomputes
every chain hash from the events' content.

**Speed.** Building the tree reads each block of events as one row of aggregates (their numbers,
links and hashes joined into strings, checked and decoded whole), so no row object is built per
event; the per-event Python work is one leaf hash and, on average, one interior hash (see
docs/performance.md). It keeps only ``log2(n)`` hashes. The hashes of complete subtrees of
:data:`CACHE_LEVEL` levels and more (256 events and up) are stored in ``merkle_nodes`` when a
checkpoint is taken, so a proof (:class:`LedgerTree`) reads a few hundred events and a few dozen
cached hashes instead of the whole ledger. The cache is never trusted: a proof built from a
tampered cache fails verification against the signed checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from fairalloc.errors import Diagnostic, ExitCode, FairallocError, Location
from fairalloc.ledger.chain import GENESIS, recompute
from fairalloc.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    Hashes,
    leaf_hash,
    node_hash,
    root_of,
    split_point,
)
from fairalloc.ledger.schema import merkle_nodes
from fairalloc.ledger.store import Session, driver_refused

CACHE_LEVEL = 8
"""Subtrees of ``2**CACHE_LEVEL`` events and more are cached; smaller ones are hashed from events."""

_LINKS = "SELECT seq, prev_hash, hash FROM events WHERE seq > ? ORDER BY seq"
_COLUMNS = ("seq, recorded_at, actor, kind, order_id, key, topic, payload, prev_hash, hash, source, service, "
            "on_behalf_of")


class BrokenLedger(FairallocError):
    """The events cannot carry a proof: one is missing, or its stored hash is not a hash."""

    exit_code = ExitCode.CHECK_FAILED


def event_leaf(chain_hash: str) -> bytes:
    """The Merkle leaf hash of an event whose chain hash (lower-case hex) is ``chain_hash``."""
    return leaf_hash(bytes.fromhex(chain_hash))


def _not_a_hash(seq: int) -> Diagnostic:
    return Diagnostic("ledger-hash-forged", f"event {seq}'s stored hash is not a SHA-256 hash",
                      Location(pointer=f"/events/{seq}"), hint="run: fairalloc ledger verify")


def stored_leaf(seq: int, digest: str) -> bytes:
    """The leaf of event ``seq`` from its stored hash; a stored hash that is not hex is a finding."""
    try:
        return event_leaf(digest)
    except (ValueError, TypeError) as error:
        raise BrokenLedger(_not_a_hash(seq)) from error


BLOCK = 1 << 16
"""Events are read and hashed in aligned blocks of this many (a power of two)."""


def _batches(session: Session, sql: str, params: tuple[Any, ...] = (), first: int = BLOCK
             ) -> Iterator[Sequence[Any]]:
    """Rows of ``sql`` (``?`` placeholders) straight from the driver, ``first`` rows and then
    :data:`BLOCK` at a time (flat memory)."""
    raw = session.conn.connection.dbapi_connection
    assert raw is not None
    postgres = session.conn.dialect.name == "postgresql"
    cursor = raw.cursor(name="fairalloc_tree") if postgres else raw.cursor()
    try:
        cursor.execute(sql.replace("?", "%s") if postgres else sql, params)
        batch = first
        while rows := cursor.fetchmany(batch):
            yield rows
            batch = BLOCK
    except session.conn.dialect.loaded_dbapi.Error as error:
        raise driver_refused(error) from error
    finally:
        cursor.close()


def _at(seq: int) -> Location:
    return Location(pointer=f"/events/{seq}")


@dataclass(slots=True)
class Built:
    """A tree built from the stored chain: its size and root, the roots at the sizes asked for on
    the way, the cacheable subtree hashes, and the first broken link if the chain has one."""

    size: int
    root: bytes
    roots_at: dict[int, bytes]
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    finding: Diagnostic | None = None


def build(session: Session, at: Sequence[int] = ()) -> Built:
    """The tree of every event in ``session``'s snapshot, from the stored chain hashes.

    Stops at the first event whose number or link is out of place (``finding``): a chain broken
    like that is not signed. ``at`` names earlier sizes whose roots are wanted too (the last
    checkpoint's, to prove the new one extends it) without a second pass. Each block of events
    is checked with whole-list comparisons and hashed level by level: the per-event Python work
    is one hex decoding and one leaf hash."""
    built = Built(0, EMPTY_ROOT, {0: EMPTY_ROOT} if 0 in at else {})
    _extend(session, built, _frontier(built), GENESIS, sorted(set(at) - {0}))
    return built


def _frontier(built: Built) -> Frontier:
    return Frontier(lambda level, index, digest: built.nodes.append((level, index, digest)),
                    min_level=CACHE_LEVEL)


def _extend(session: Session, built: Built, frontier: Frontier, previous: str,
            wanted: Sequence[int]) -> None:
    """Add the events after ``frontier.size`` (the first linking to ``previous``) to ``built``.

    Each block is first read as one row of aggregates (:func:`_linked_block`); the first block
    that does not pass as a whole, and whatever follows the last one, is read row by row, which
    locates the first event out of number or out of link."""
    while (block := _linked_block(session, frontier.size, previous)) is not None:
        leaves, previous, whole = block
        _add(built, frontier, leaves, wanted)
        if not whole:
            break
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    start = frontier.size
    for rows in _batches(session, _LINKS, (start,), first=BLOCK - start % BLOCK):
        seqs, links, digests = zip(*rows, strict=True)
        first = frontier.size + 1
        if seqs != tuple(range(first, first + len(rows))) or links[0] != previous \
                or links[1:] != digests[:-1]:
            built.finding = _break(rows, first, previous)
            break
        try:
            leaves = [sha256(b"\x00" + fromhex(digest)).digest() for digest in digests]
        except (ValueError, TypeError):
            built.finding = _not_a_hash(next(seq for seq, _link, digest in rows if not _is_hex(digest)))
            break
        _add(built, frontier, leaves, wanted)
        previous = digests[-1]
    built.size, built.root = frontier.size, frontier.root()


def _add(built: Built, frontier: Frontier, leaves: list[bytes], wanted: Sequence[int]) -> None:
    """Append a block's leaves, noting the roots at the ``wanted`` sizes it passes."""
    for size in wanted:
        if frontier.size < size <= frontier.size + len(leaves):
            partial = frontier.copy()
            partial.extend(leaves[:size - frontier.size])
            built.roots_at[size] = partial.root()
    frontier.extend(leaves)


# One block of events as one row: how many, and their numbers, links and hashes each joined by
# a space in event order (the largest link and hash too: on SQLite a BLOB sorts above any text).
_BLOCK_SQL = {
    "sqlite": "SELECT count(*), group_concat(seq, ' '), group_concat(prev_hash, ' '), "
              "group_concat(hash, ' '), max(prev_hash), max(hash) FROM events "
              "WHERE seq > ? AND seq <= ?",
    "postgresql": "SELECT count(*), string_agg(seq::text, ' ' ORDER BY seq), "
                  "string_agg(prev_hash::text, ' ' ORDER BY seq), "
                  "string_agg(hash::text, ' ' ORDER BY seq), '', '' FROM events "
                  "WHERE seq > %s AND seq <= %s",
}


def _linked_block(session: Session, size: int, previous: str) -> tuple[list[bytes], str, bool] | None:
    """The leaves of the events from ``size + 1`` to the next multiple of :data:`BLOCK`, read as
    one row of aggregates, with the last hash and whether the block is whole; or None unless
    every event there is in place: numbered ``size + 1`` on without a gap or a repeat, each
    linking to the hash before it (the first to ``previous``), each hash 64 hex digits.

    It accepts exactly what the row-by-row check does, at a fraction of the cost of building a
    row per event: the numbers are compared as one string (which also proves the aggregates ran
    in event order), the links as one string against the hashes shifted by one, and the hashes
    decoded in one call. Anything else (an empty block, a NULL, a BLOB, a hash of another
    length or with other characters) returns None, and the row-by-row check reports it."""
    end = size - size % BLOCK + BLOCK
    raw = session.conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(_BLOCK_SQL[session.conn.dialect.name], (size, end))
        [row] = cursor.fetchall()  # an aggregate: always one row
    except session.conn.dialect.loaded_dbapi.Error as error:
        raise driver_refused(error) from error
    finally:
        cursor.close()
    count, numbers, links, digests, top_link, top_hash = row
    width = 65 * count - 1  # count hashes of 64 characters, and a space between each two
    if not count or type(top_link) is not str or type(top_hash) is not str \
            or type(links) is not str or type(digests) is not str \
            or len(digests) != width or digests[64::65] != " " * (count - 1) \
            or digests.count(" ") != count - 1 or links.count(" ") != count - 1 \
            or links != (previous + " " + digests[:-65] if count > 1 else previous) \
            or numbers != " ".join(map(str, range(size + 1, size + count + 1))):
        return None
    try:
        hashes = bytes.fromhex(digests)  # the spaces between hashes are skipped
    except ValueError:
        return None
    if len(hashes) != 32 * count:  # whitespace inside a hash was skipped too
        return None
    sha256 = hashlib.sha256
    leaves = [sha256(b"\x00" + hashes[i:i + 32]).digest() for i in range(0, len(hashes), 32)]
    return leaves, digests[-64:], size + count == end


def resume(session: Session, size: int, root: bytes) -> Built | None:
    """The tree of every event, built on a signed tree of ``size`` events and ``root`` instead
    of from the first event: what a checkpoint after a checkpoint costs (the events since).

    The tree of the first ``size`` events is rebuilt from the cached subtree hashes and the
    events of its last block (whole or not), which ends with the event the next one links to.
    Only if that rebuilds ``root`` exactly — the cached and stored hashes it used are then the
    signed ones — are the later events read, checked and added. Otherwise (a cache not filled
    that far, or anything stored that no longer matches) None: build from the first event,
    which finds what changed. Links *within* the signed events are not re-read here; ``ledger
    verify`` checks the whole chain."""
    if size == 0:
        return None
    source = LedgerTree(session)
    width = 1 << CACHE_LEVEL
    tail = size - (size % width or width)  # the last block, whole or not, is read from events
    built = Built(0, EMPTY_ROOT, {size: root})
    frontier = _frontier(built)
    for level in range(tail.bit_length() - 1, CACHE_LEVEL - 1, -1):
        if tail >> level & 1:
            cached = source.cached(level, frontier.size >> level)
            if cached is None:
                return None
            frontier.push(level, cached)
    try:
        frontier.extend(source.leaves(tail, size))
    except BrokenLedger:
        return None
    if frontier.size != size or frontier.root() != root:
        return None
    rows = source.rows("SELECT hash FROM events WHERE seq = ?", (size,))
    _extend(session, built, frontier, rows[0][0], ())
    return built


def _is_hex(text: object) -> bool:
    try:
        bytes.fromhex(text)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def _break(rows: Sequence[tuple[Any, ...]], first: int, previous: str) -> Diagnostic:
    """The first event of ``rows`` out of number or out of link."""
    for offset, (seq, link, digest) in enumerate(rows):
        if seq != first + offset:
            return Diagnostic("ledger-event-missing",
                              f"event {first + offset} is missing (the next event recorded is "
                              f"{seq}): events were deleted", _at(first + offset))
        if link != previous:
            return Diagnostic("ledger-chain-broken",
                              f"event {seq} does not link to event {seq - 1}", _at(seq))
        previous = digest
    raise AssertionError("no break in a block that failed its check")  # a defect


def remember(session: Session, nodes: Sequence[tuple[int, int, bytes]]) -> None:
    """Store subtree hashes in the cache (in a write session); ones already there are kept."""
    if not nodes:
        return
    rows = [{"level": level, "idx": index, "hash": digest.hex()} for level, index, digest in nodes]
    dialect = postgresql if session.conn.dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), 5_000):
        statement = dialect.insert(merkle_nodes).on_conflict_do_nothing()
        session.conn.execute(statement, rows[start:start + 5_000])


def recomputed_root(session: Session, size: int) -> tuple[int, bytes]:
    """The number of events read (at most ``size``) and the root of the tree of their hashes as
    recomputed from each event's content: what an outsider gets from the events alone.

    Events are taken in stored order whatever their numbers, so a deleted, inserted or reordered
    event changes the root just as an edited one does."""
    frontier = Frontier()
    if size:
        for rows in _batches(session, f"SELECT {_COLUMNS} FROM events ORDER BY seq"):
            leaves = [leaf_hash(bytes.fromhex(recompute(raw))) for raw in rows]
            frontier.extend(leaves[:size - frontier.size])
            if frontier.size == size:
                break
    return frontier.size, frontier.root()


class LedgerTree:
    """Subtree hashes of the ledger's tree for proofs: cached subtrees, else hashed from events.

    A proof asks for a few dozen subtree hashes. :meth:`prepare` reads the cached ones it will
    need in one query and the events in aligned blocks of ``2**CACHE_LEVEL`` (each block once),
    so a proof costs a handful of round trips to the database whatever the ledger's size."""

    def __init__(self, session: Session) -> None:
        self.session = session
        raw = session.conn.connection.dbapi_connection
        assert raw is not None
        self._raw = raw
        self._mark = "%s" if session.conn.dialect.name == "postgresql" else "?"
        self._blocks: dict[int, list[bytes]] = {}
        self._nodes: dict[tuple[int, int], bytes | None] = {}

    def prepare(self, proof: Callable[[Hashes], object]) -> None:
        """Fetch at once what ``proof`` (a proof generator called with a source) will read."""
        asked = _Asked()
        proof(asked)
        keys: set[tuple[int, int]] = set()
        blocks: set[int] = set()
        for start, end in asked.ranges:
            self._plan(start, end, keys, blocks)
        keys -= self._nodes.keys()
        if keys:
            where = " OR ".join(["(level = ? AND idx = ?)"] * len(keys))
            params = tuple(value for key in sorted(keys) for value in key)
            found = {(level, index): digest for level, index, digest in
                     self.rows(f"SELECT level, idx, hash FROM merkle_nodes WHERE {where}", params)}
            for key in keys:
                self._nodes[key] = _unhex(found.get(key))
        width = 1 << CACHE_LEVEL
        for block in sorted(blocks - self._blocks.keys()):
            self._blocks[block] = self._contiguous(block * width, (block + 1) * width)

    def _plan(self, start: int, end: int, keys: set[tuple[int, int]], blocks: set[int]) -> None:
        """What :meth:`range_hash` reads for ``start``–``end``: cache keys and event blocks."""
        size, width = end - start, 1 << CACHE_LEVEL
        level = size.bit_length() - 1
        if size & (size - 1) == 0 and level >= CACHE_LEVEL and start % size == 0:
            keys.add((level, start >> level))
        elif size <= width or size & (size - 1) == 0:
            blocks.update(range(start // width, (end - 1) // width + 1))
        else:
            k = split_point(size)
            self._plan(start, start + k, keys, blocks)
            self._plan(start + k, end, keys, blocks)

    def rows(self, sql: str, params: tuple[int, ...]) -> list[Any]:
        cursor = self._raw.cursor()
        try:
            cursor.execute(sql.replace("?", self._mark), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def size(self) -> int:
        head = self.session.head()
        return 0 if head is None else head.seq

    def event(self, seq: int) -> tuple[Any, ...] | None:
        """The stored row of event ``seq`` (event column order), or None."""
        rows = self.rows(f"SELECT {_COLUMNS} FROM events WHERE seq = ?", (seq,))
        return tuple(rows[0]) if rows else None

    def _contiguous(self, first: int, end: int) -> list[bytes]:
        """Leaf hashes of events ``first + 1`` … while their numbers run on, at most to ``end``."""
        rows = self.rows("SELECT seq, hash FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
                          (first, end))
        leaves: list[bytes] = []
        for seq, digest in rows:
            if seq != first + len(leaves) + 1:
                break
            leaves.append(stored_leaf(seq, digest))
        return leaves

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes of events ``start + 1`` to ``end``; a missing one is an error."""
        width = 1 << CACHE_LEVEL
        blocks = range(start // width, (end - 1) // width + 1)
        if len(blocks) > 4:  # a wide range with no cached subtree: one read
            leaves = self._contiguous(start, end)
        else:
            leaves = []
            for block in blocks:
                if block not in self._blocks:
                    self._blocks[block] = self._contiguous(block * width, (block + 1) * width)
                base = block * width
                leaves += self._blocks[block][max(start, base) - base:min(end, base + width) - base]
        if len(leaves) != end - start:
            missing = start + len(leaves) + 1
            raise BrokenLedger(Diagnostic(
                "ledger-event-missing", f"event {missing} is missing: no proof can be built over it",
                _at(missing), hint="run: fairalloc ledger verify"))
        return leaves

    def cached(self, level: int, index: int) -> bytes | None:
        """The cached hash of subtree ``index`` of ``level``, if it is cached (and is a hash)."""
        if (level, index) not in self._nodes:
            rows = self.rows("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?",
                             (level, index))
            self._nodes[(level, index)] = _unhex(rows[0][0] if rows else None)
        return self._nodes[(level, index)]

    def range_hash(self, start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0:  # a perfect subtree: cached once it reaches CACHE_LEVEL
            level = size.bit_length() - 1
            if level >= CACHE_LEVEL and start % size == 0:
                cached = self.cached(level, start >> level)
                if cached is not None:
                    return cached
            return root_of(self.leaves(start, end))
        if size <= 1 << CACHE_LEVEL:
            return root_of(self.leaves(start, end))
        k = split_point(size)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))


class _Asked:
    """A stand-in source that records which subtree ranges a proof generator asks for."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def range_hash(self, start: int, end: int) -> bytes:
        self.ranges.append((start, end))
        return bytes(32)


def _unhex(text: str | None) -> bytes | None:
    """A cached hash, or None when there is none or it is not 32 bytes of hex (the cache is
    never trusted: a damaged entry is treated as missing)."""
    try:
        digest = bytes.fromhex(text) if text is not None else None
    except (ValueError, TypeError):
        return None
    return digest if digest is not None and len(digest) == 32 else None
