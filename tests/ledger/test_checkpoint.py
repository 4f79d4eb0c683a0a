"""Signed checkpoints and proofs over the real ledger, on SQLite and PostgreSQL.

The insider here has write access to the database itself: on SQLite the file (opened with the
``sqlite3`` module, triggers dropped), on PostgreSQL the table owner (triggers disabled). They
re-chain the whole ledger with valid hashes, or cut its tail: ``ledger verify`` alone cannot tell,
``ledger verify --checkpoint`` must.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import make_url, text

from fairalloc.cli import main
from fairalloc.ledger import merkle, tree
from fairalloc.ledger.chain import GENESIS, event_canonical, link_hash
from fairalloc.ledger.store import Ledger, NewEvent

from .helpers import me

EVENTS = 600  # more than two cached 256-event subtrees, and a ragged right edge


def _fill(ledger: Ledger, count: int, first: int = 0) -> None:
    for start in range(first, first + count, 200):
        with ledger.write() as session:
            session.append(*(NewEvent("test.event", me(ledger), {"n": n}, order_id=f"O-{n % 7}")
                             for n in range(start, min(first + count, start + 200))))


_WRITERS: set[str] = set()


def _as_writer(url: str) -> str:
    """On PostgreSQL the commands run as a writer role, as deployed (the engine refuses to write
    as the schema's owner): the owner sets up the role split once per test database."""
    if not url.startswith("postgresql"):
        return url
    if url not in _WRITERS:
        assert main(["ledger", "roles", "--writer", "clerk", "--ledger", url]) == 0
        _WRITERS.add(url)
    return make_url(url).set(username="clerk").render_as_string(hide_password=False)


def fa(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = list(argv)
    if "--ledger" in args:
        where = args.index("--ledger") + 1
        args[where] = _as_writer(args[where])
    capsys.readouterr()
    status = main(["--error-format", "json", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _codes(err: str) -> list[str]:
    return [d["code"] for d in json.loads(err)["errors"]] if err.strip() else []


def _verify(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> tuple[int, list[str]]:
    """``ledger verify``'s status and finding codes, leaving out the authority walk's findings:
    these ledgers hold synthetic events no workflow step records (tests/ledger/test_authority.py
    covers that walk), and what is judged here is the chain and the checkpoint."""
    status, out, err = fa(capsys, "ledger", "verify", "--ledger", url, "--format", "json", *extra)
    if not out.strip():
        return status, _codes(err)
    codes = [f["code"] for f in json.loads(out)["findings"] if not f["code"].startswith("authority-")]
    return (status if codes else 0), codes


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    status, _out, err = fa(capsys, "ledger", "keygen", "--name", "example.com/fairalloc",
                           "--key", str(tmp_path / "signing.key"))
    assert status == 0, err
    return tmp_path / "signing.key"


def _insider(ledger: Ledger, change: Callable[[Any], None]) -> None:
    """Run ``change(cursor)`` on the database as a careful insider with write access would: the
    append-only triggers dropped (disabled) for the change and put back exactly as they were, so
    that ``verify``'s check of the protection sees nothing."""
    if ledger.backend == "sqlite":
        database = ledger.engine.url.database
        assert database is not None
        raw = sqlite3.connect(database, isolation_level=None)
        triggers = raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        raw.execute("BEGIN")
        for name, _sql in triggers:
            raw.execute(f"DROP TRIGGER {name}")
        change(raw)
        for _name, sql in triggers:
            raw.execute(sql)
        raw.execute("COMMIT")
        raw.close()
        return
    with ledger.engine.connect() as conn, conn.begin():
        conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        change(_Qmark(cursor))
        conn.execute(text("ALTER TABLE events ENABLE TRIGGER USER"))


class _Qmark:
    """A psycopg cursor that takes the ``?`` placeholders of the SQLite statements."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.cursor.execute(sql.replace("?", "%s"), params)
        return self.cursor


def _rechain(edit_seq: int) -> Callable[[Any], None]:
    """Edit one event's payload and recompute every hash from it onwards: a valid chain."""
    def change(cursor: Any) -> None:
        rows = cursor.execute("SELECT seq, recorded_at, actor, kind, order_id, key, topic, payload, "
                              "source, service, on_behalf_of FROM events ORDER BY seq").fetchall()
        previous = GENESIS
        for seq, recorded_at, actor, kind, order_id, key, topic, payload, *how in rows:
            if seq == edit_seq:
                payload = '{"n":999999}'
            digest = link_hash(previous, event_canonical(seq, recorded_at, actor, kind, order_id,
                                                         key, topic, payload, *how))
            cursor.execute("UPDATE events SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                           (payload, previous, digest, seq))
            previous = digest
    return change


def _truncate(keep: int) -> Callable[[Any], None]:
    def change(cursor: Any) -> None:
        cursor.execute("DELETE FROM events WHERE seq > ?", (keep,))
    return change


def _checkpoint(capsys: pytest.CaptureFixture[str], url: str, key: Path, out: str) -> tuple[int, str]:
    status, _out, err = fa(capsys, "ledger", "checkpoint", "--ledger", url, "--key", str(key),
                           "--out", out)
    return status, err


def _against(checkpoint: Path, key: Path) -> tuple[str, ...]:
    return ("--checkpoint", str(checkpoint), "--verifier-key", f"{key}.pub")


def test_untouched_ledger_verifies_against_its_checkpoint(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, EVENTS)
    assert _checkpoint(capsys, ledger.url, keys, f"{tmp_path}/cps/") == (0, "")
    latest = tmp_path / "cps" / "latest"
    assert latest.read_text() == (tmp_path / "cps" / str(EVENTS)).read_text()
    lines = latest.read_text().split("\n")
    assert lines[:2] == ["example.com/fairalloc", str(EVENTS)] and lines[3] == ""
    assert lines[4].startswith("\u2014 example.com/fairalloc ")
    assert _verify(capsys, ledger.url, *_against(latest, keys)) == (0, [])
    _fill(ledger, 10, first=EVENTS)  # later events are not the checkpoint's business
    assert _verify(capsys, ledger.url, *_against(latest, keys)) == (0, [])


def test_rechained_ledger_is_found_only_against_the_checkpoint(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, EVENTS)
    assert _checkpoint(capsys, ledger.url, keys, str(tmp_path / "day.checkpoint"))[0] == 0
    _insider(ledger, _rechain(edit_seq=17))
    assert _verify(capsys, ledger.url) == (0, [])  # the chain itself is self-consistent
    assert _verify(capsys, ledger.url, *_against(tmp_path / "day.checkpoint", keys)) == (
        1, ["checkpoint-root-mismatch"])


def test_truncated_ledger_is_found_against_the_checkpoint(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, EVENTS)
    assert _checkpoint(capsys, ledger.url, keys, str(tmp_path / "day.checkpoint"))[0] == 0
    _insider(ledger, _truncate(keep=EVENTS - 25))
    assert _verify(capsys, ledger.url) == (0, [])
    assert _verify(capsys, ledger.url, *_against(tmp_path / "day.checkpoint", keys)) == (
        1, ["checkpoint-ledger-truncated"])


def test_no_checkpoint_is_signed_over_a_rewritten_or_cut_history(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, 300)
    folder = f"{tmp_path}/cps/"
    assert _checkpoint(capsys, ledger.url, keys, folder)[0] == 0
    _insider(ledger, _rechain(edit_seq=299))
    _fill(ledger, 5, first=300)
    status, err = _checkpoint(capsys, ledger.url, keys, folder)
    assert (status, _codes(err)) == (1, ["checkpoint-inconsistent"])
    _insider(ledger, _truncate(keep=200))
    status, err = _checkpoint(capsys, ledger.url, keys, folder)
    assert (status, _codes(err)) == (1, ["checkpoint-ledger-truncated"])
    assert sorted(p.name for p in (tmp_path / "cps").iterdir()) == ["300", "latest"]


def test_checkpoint_signed_by_another_key_is_refused(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, 20)
    other = tmp_path / "other.key"
    assert fa(capsys, "ledger", "keygen", "--name", "example.com/fairalloc", "--key", str(other))[0] == 0
    assert _checkpoint(capsys, ledger.url, other, str(tmp_path / "forged"))[0] == 0
    assert _verify(capsys, ledger.url, *_against(tmp_path / "forged", keys)) == (
        1, ["checkpoint-unknown-key"])


def test_edited_checkpoint_is_refused(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, 20)
    _fill(ledger, 5, first=20)
    signed = tmp_path / "cp"
    assert _checkpoint(capsys, ledger.url, keys, str(signed))[0] == 0
    origin, size, root, *rest = signed.read_text().split("\n")
    # A smaller size would hide a later truncation; the signature no longer holds.
    (tmp_path / "edited").write_text("\n".join([origin, "20", root, *rest]))
    assert _verify(capsys, ledger.url, *_against(tmp_path / "edited", keys)) == (
        1, ["checkpoint-signature-invalid"])
    other_root = base64.b64encode(bytes(32)).decode()
    (tmp_path / "edited").write_text("\n".join([origin, size, other_root, *rest]))
    assert _verify(capsys, ledger.url, *_against(tmp_path / "edited", keys)) == (
        1, ["checkpoint-signature-invalid"])
    (tmp_path / "edited").write_text("not a checkpoint\n")
    assert _verify(capsys, ledger.url, *_against(tmp_path / "edited", keys)) == (
        4, ["checkpoint-malformed"])


def _outsider_leaf(event: dict[str, Any]) -> bytes:
    """What someone holding only the proof's event fields computes as its leaf."""
    canonical = event_canonical(event["seq"], event["recorded_at"], event["actor"], event["kind"],
                                event["order_id"], event["key"], event["topic"], event["payload"],
                                event["source"], event["service"], event["on_behalf_of"])
    return merkle.leaf_hash(bytes.fromhex(link_hash(event["prev_hash"], canonical)))


def _root(path: Path) -> bytes:
    return base64.b64decode(path.read_text().split("\n")[2])


def test_inclusion_and_consistency_proofs_verify_for_an_outsider(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, 300)
    folder = f"{tmp_path}/cps/"
    assert _checkpoint(capsys, ledger.url, keys, folder)[0] == 0
    _fill(ledger, EVENTS - 300, first=300)
    assert _checkpoint(capsys, ledger.url, keys, folder)[0] == 0
    first, second = tmp_path / "cps" / "300", tmp_path / "cps" / str(EVENTS)
    for seq in (1, 2, 255, 256, 257, 300, 513, EVENTS):
        status, out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url, "--event", str(seq),
                              "--checkpoint", str(second), "--verifier-key", f"{keys}.pub")
        assert status == 0, err
        proof = json.loads(out)
        assert proof["event"]["seq"] == seq and proof["tree_size"] == EVENTS
        path = [base64.b64decode(h) for h in proof["proof"]]
        assert merkle.verify_inclusion(seq - 1, EVENTS, _outsider_leaf(proof["event"]), path,
                                       _root(second))
    status, out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url,
                          "--from", str(first), "--to", str(second))
    assert status == 0, err
    proof = json.loads(out)
    path = [base64.b64decode(h) for h in proof["proof"]]
    assert merkle.verify_consistency(300, EVENTS, _root(first), _root(second), path)
    status, _out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url,
                           "--from", str(second), "--to", str(first))
    assert (status, _codes(err)) == (4, ["proof-checkpoint-order"])
    status, _out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url, "--event", "601",
                           "--checkpoint", str(second))
    assert (status, _codes(err)) == (4, ["proof-event-unknown"])


def test_a_proof_over_a_rewritten_ledger_or_cache_is_refused(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, EVENTS)
    assert _checkpoint(capsys, ledger.url, keys, str(tmp_path / "cp"))[0] == 0
    with ledger.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE merkle_nodes SET hash = :h WHERE level = 8 AND idx = 1"),
                     {"h": "00" * 32})
    status, _out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url, "--event", "3",
                           "--checkpoint", str(tmp_path / "cp"))
    assert (status, _codes(err)) == (1, ["checkpoint-root-mismatch"])
    status, _out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url, "--event", "300",
                           "--checkpoint", str(tmp_path / "cp"))
    assert status == 0, err  # its path does not pass through the damaged subtree
    _insider(ledger, _rechain(edit_seq=400))
    status, _out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url, "--event", "400",
                           "--checkpoint", str(tmp_path / "cp"))
    assert (status, _codes(err)) == (1, ["checkpoint-root-mismatch"])


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(
        keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    name, key_id, encoded = Path(f"{keys}.pub").read_text().strip().split("+", 2)
    assert name == "example.com/fairalloc" and len(bytes.fromhex(key_id)) == 4
    assert base64.b64decode(encoded)[:1] == b"\x01" and len(base64.b64decode(encoded)) == 33
    before = keys.read_text()
    status, _out, err = fa(capsys, "ledger", "keygen", "--name", "x", "--key", str(keys))
    assert (status, _codes(err)) == (7, ["key-file-exists"]) and keys.read_text() == before
    status, _out, err = fa(capsys, "ledger", "keygen", "--name", "has space", "--key",
                           str(keys.with_name("new")))
    assert (status, _codes(err)) == (4, ["bad-key-name"])


def test_export_carries_the_checkpoint_it_was_taken_at(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, 40)
    status, _out, err = fa(capsys, "ledger", "export", "--ledger", ledger.url, "--out",
                           str(tmp_path / "export"), "--key", str(keys))
    assert status == 0, err
    signed = tmp_path / "export" / "checkpoint"
    assert signed.read_text().split("\n")[1] == "40"
    head = json.loads((tmp_path / "export" / "head.json").read_text())["head"]
    assert head["seq"] == 40
    assert _verify(capsys, ledger.url, *_against(signed, keys)) == (0, [])


@pytest.fixture(scope="module")
def partly_cached(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """700 events on SQLite whose subtree cache covers only the first 300 (a checkpoint then)."""
    ledger = Ledger(f"sqlite:///{tmp_path_factory.mktemp('cache') / 'ledger.db'}")
    _fill(ledger, 300)
    with ledger.read() as session:
        built = tree.build(session)
    with ledger.write() as session:
        tree.remember(session, built.nodes)
    _fill(ledger, 400, first=300)
    return ledger


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_ledger_tree_proofs_equal_the_in_memory_tree(partly_cached: Ledger, data: st.DataObject) -> None:
    with partly_cached.read() as session:
        source = tree.LedgerTree(session)
        memory = merkle.MemoryTree([tree.event_leaf(e.hash) for e in session.query()])
        size = data.draw(st.integers(1, 700), "size")
        index = data.draw(st.integers(0, size - 1), "index")
        first = data.draw(st.integers(0, size), "first")
        assert merkle.inclusion_proof(source, index, size) == merkle.inclusion_proof(memory, index, size)
        assert merkle.consistency_proof(source, first, size) == merkle.consistency_proof(
            memory, first, size)
        assert tree.build(session).root == merkle.root_of(memory.leaves)


def test_build_over_several_blocks_equals_the_reference_tree(tmp_path: Path) -> None:
    """Past one block of events (the fast path): the same root, subtree hashes and earlier
    roots as the in-memory tree, and a break inside a full block located exactly."""
    count = tree.BLOCK + 300
    with Ledger(f"sqlite:///{tmp_path / 'big.db'}") as ledger:
        with ledger.write() as session:
            session.append(*(NewEvent("test.event", me(ledger), {"n": n}) for n in range(count)))
        with ledger.read() as session:
            sizes = [0, 1, 255, 256, 4_097, tree.BLOCK - 1, tree.BLOCK, tree.BLOCK + 1, count]
            built = tree.build(session, at=sizes)
            leaves = [tree.event_leaf(e.hash) for e in session.query()]
        assert built.finding is None and built.size == count
        assert built.root == merkle.root_of(leaves)
        assert built.roots_at == {size: merkle.root_of(leaves[:size]) for size in sizes}
        expected = {(level, index): merkle.root_of(leaves[index << level:(index + 1) << level])
                    for level in range(tree.CACHE_LEVEL, 17)
                    for index in range(count >> level)}
        assert {(level, index): digest for level, index, digest in built.nodes} == expected
        _insider(ledger, lambda cursor: cursor.execute(
            "UPDATE events SET prev_hash = ? WHERE seq = 4097", ("ab" * 32,)))
        with ledger.read() as session:
            finding = tree.build(session).finding
        assert finding is not None and finding.code == "ledger-chain-broken"
        assert finding.location.pointer == "/events/4097"


def test_a_stored_hash_that_is_not_a_hash_is_a_finding_not_a_crash(
        ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(ledger, 30)
    assert _checkpoint(capsys, ledger.url, keys, str(tmp_path / "cp"))[0] == 0
    _insider(ledger, lambda cursor: cursor.execute(
        "UPDATE events SET hash = ? WHERE seq = 30", ("not hex at all",)))
    status, err = _checkpoint(capsys, ledger.url, keys, str(tmp_path / "cp"))
    assert (status, _codes(err)) == (1, ["ledger-hash-forged"])
    status, _out, err = fa(capsys, "ledger", "prove", "--ledger", ledger.url, "--event", "30")
    assert (status, _codes(err)) == (1, ["ledger-hash-forged"])
    # The chain names the damage; the content, rehashed, still matches the checkpoint.
    assert _verify(capsys, ledger.url, *_against(tmp_path / "cp", keys)) == (
        1, ["ledger-event-edited"])


@pytest.mark.parametrize("first", [256, 300, 512, 700])
def test_a_checkpoint_after_a_checkpoint_reads_only_the_events_since(
        tmp_path: Path, first: int) -> None:
    """Resumed from the signed tree and the cache, the tree equals the one built from the first
    event; damage to the cache or to the signed events' tail sends it back to the full build."""
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        _fill(ledger, first)
        with ledger.read() as session:
            signed = tree.build(session)
        with ledger.write() as session:
            tree.remember(session, signed.nodes)
        _fill(ledger, 333, first=first)
        with ledger.read() as session:
            resumed = tree.resume(session, first, signed.root)
            full = tree.build(session)
            assert tree.resume(session, first, bytes(32)) is None
        assert resumed is not None and resumed.finding is None
        assert (resumed.size, resumed.root) == (full.size, full.root) == (first + 333, full.root)
        assert {(lv, ix) for lv, ix, _ in resumed.nodes} <= {(lv, ix) for lv, ix, _ in full.nodes}
        with ledger.engine.connect() as conn, conn.begin():
            conn.execute(text("UPDATE merkle_nodes SET hash = :h"), {"h": "00" * 32})
        with ledger.read() as session:
            again = tree.resume(session, first, signed.root)
        if first <= 256:  # the signed tree is its last block alone: rebuilt from events only
            assert again is not None and again.root == full.root
        else:
            assert again is None


_DAMAGE = {
    # What an insider may leave in a stored hash or link; each must be judged by the block-wise
    # reading exactly as by the row-by-row one (the same size, root and finding).
    "hash as a BLOB": "UPDATE events SET hash = CAST(hash AS BLOB) WHERE seq = ?",
    "link as a BLOB": "UPDATE events SET prev_hash = CAST(prev_hash AS BLOB) WHERE seq = ?",
    "hash in capitals": "UPDATE events SET hash = upper(hash) WHERE seq = ?",
    "hash and next link in capitals": "UPDATE events SET hash = upper(hash) WHERE seq = ?1; "
                                      "UPDATE events SET prev_hash = upper(prev_hash) WHERE seq = ?1 + 1",
    "space in a hash": "UPDATE events SET hash = substr(hash, 1, 10) || ' ' || substr(hash, 11) WHERE seq = ?",
    "spaced hash bytes": "UPDATE events SET hash = substr(hash, 1, 62) || ' ' || substr(hash, 63, 1) "
                         "WHERE seq = ?",
    "tab for a digit pair": "UPDATE events SET hash = substr(hash, 1, 62) || char(9) || ' ' WHERE seq = ?",
    "short hash": "UPDATE events SET hash = substr(hash, 1, 62) WHERE seq = ?",
    "long hash": "UPDATE events SET hash = hash || 'ab' WHERE seq = ?",
    "hash split across a link": "UPDATE events SET hash = substr(hash, 1, 63) WHERE seq = ?1; "
                                "UPDATE events SET prev_hash = substr(prev_hash, 64) || ' ' || prev_hash "
                                "WHERE seq = ?1 + 1",
    "not hex": "UPDATE events SET hash = 'zz' || substr(hash, 3) WHERE seq = ?",
    "forged hash": "UPDATE events SET hash = '" + "ab" * 32 + "' WHERE seq = ?",
    "forged hash, next link too": "UPDATE events SET hash = '" + "ab" * 32 + "' WHERE seq = ?1; "
                                  "UPDATE events SET prev_hash = '" + "ab" * 32 + "' WHERE seq = ?1 + 1",
    "deleted": "DELETE FROM events WHERE seq = ?",
    "renumbered": "UPDATE events SET seq = seq + 1000 WHERE seq = ?",
    "hash as a number": "UPDATE events SET hash = 12345 WHERE seq = ?",
}


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger of 45 events: several blocks when a block is made 8 events long."""
    path = tmp_path_factory.mktemp("blocks") / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        _fill(ledger, 45)
    return path


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=st.sampled_from(sorted(_DAMAGE)), seq=st.integers(1, 45), block=st.sampled_from([8, 16, 1 << 16]),
       start=st.sampled_from([0, 3, 8, 20]))
def test_block_wise_reading_judges_damage_as_the_row_by_row_reading(
        small_ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        damage: str, seq: int, block: int, start: int) -> None:
    copy = tmp_path / f"{damage}-{seq}-{block}-{start}.db"
    copy.write_bytes(small_ledger.read_bytes())
    raw = sqlite3.connect(copy, isolation_level=None)
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f"DROP TRIGGER {name}")
    for statement in _DAMAGE[damage].split("; "):
        raw.execute(statement, (seq,))
    raw.close()
    monkeypatch.setattr(tree, "BLOCK", block)

    def judged() -> tuple[object, ...]:
        with Ledger(f"sqlite:///{copy}") as ledger, ledger.read() as session:
            if start:  # resumed after a signed tree of ``start`` events, as a later checkpoint is
                built = tree.Built(0, merkle.EMPTY_ROOT, {})
                frontier = tree._frontier(built)
                frontier.extend([tree.event_leaf(h) for (h,) in session.conn.exec_driver_sql(
                    "SELECT hash FROM events WHERE seq <= ? ORDER BY seq", (start,)).fetchall()])
                if frontier.size != start:
                    return ("short",)
                previous = session.conn.exec_driver_sql(
                    "SELECT hash FROM events WHERE seq = ?", (start,)).scalar_one()
                tree._extend(session, built, frontier, previous, (start + 5, 40))
            else:
                built = tree.build(session, at=(5, 40))
        finding = built.finding and (built.finding.code, built.finding.location.pointer)
        return built.size, built.root, built.roots_at, sorted(built.nodes), finding

    try:
        fast = judged()
    except Exception as error:  # the same failure either way (a hash of the wrong type to decode)
        fast = (type(error).__name__,)
    monkeypatch.setattr(tree, "_linked_block", lambda *_args: None)
    try:
        rows = judged()
    except Exception as error:
        rows = (type(error).__name__,)
    assert fast == rows
