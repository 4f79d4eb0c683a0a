"""A SQLite ledger file changed by hand, outside the ledger, in ways its schema allows.

Each change is made with Python's own sqlite3 module after dropping the triggers, as an insider
with write access to the file could. ``ledger verify`` (with and without a signed checkpoint) must
report it with a documented status and a code, never exit 70: a text that is not ASCII, a value
stored as a BLOB, text that is not UTF-8, a missing table or column, an unknown schema revision.
"""

from __future__ import annotations

import json
import pwd
import os
import sqlite3
from pathlib import Path

import pytest

from fairalloc.cli import main

ME = pwd.getpwuid(os.geteuid()).pw_name


def _drop_triggers(db: sqlite3.Connection) -> None:
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")


TAMPERS: dict[str, tuple[str, int, str]] = {
    # name: (SQL run after dropping the triggers, exit status, first code reported)
    "payload-not-ascii": ("UPDATE events SET payload = replace(payload, 'cco', 'cc\u00f3') WHERE seq = 2",
                          1, "ledger-event-edited"),
    "recorded-at-blob": ("UPDATE events SET recorded_at = x'00' WHERE seq = 2", 1, "ledger-event-edited"),
    "actor-blob": ("UPDATE events SET actor = x'41' WHERE seq = 2", 1, "ledger-event-edited"),
    "kind-blob": ("UPDATE events SET kind = x'41' WHERE seq = 2", 1, "ledger-event-edited"),
    "actor-not-utf8": ("UPDATE events SET actor = char(55296) WHERE seq = 2", 6, "ledger-database-error"),
    "events-dropped": ("DROP TABLE events", 6, "ledger-database-error"),
    "column-dropped": ("ALTER TABLE events DROP COLUMN service", 6, "ledger-database-error"),
    "unknown-revision": ("UPDATE alembic_version SET version_num = 'deadbeef'", 6, "ledger-database-error"),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ledger")
    ledger = str(folder / "ledger.db")
    assert main(["ledger", "init", "--admin", ME, "--ledger", ledger]) == 0
    assert main(["ledger", "user", "grant", ME, "cco", "--ledger", ledger]) == 0
    key = str(folder / "ledger.key")
    assert main(["ledger", "keygen", "--name", "example.com/ledger", "--key", key]) == 0
    assert main(["ledger", "checkpoint", "--key", key, "--out", str(folder / "checkpoint"), "--ledger", ledger]) == 0
    return folder


@pytest.mark.parametrize("name", sorted(TAMPERS))
@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_hand_edited_ledger_file_is_reported_not_crashed_on(
        name: str, checkpoint: bool, recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql, status, code = TAMPERS[name]
    copy = tmp_path / "ledger.db"
    copy.write_bytes((recorded / "ledger.db").read_bytes())
    db = sqlite3.connect(copy, isolation_level=None)
    _drop_triggers(db)
    db.execute(sql)
    db.close()
    capsys.readouterr()
    extra = ["--checkpoint", str(recorded / "checkpoint"), "--verifier-key", str(recorded / "ledger.key.pub")]
    argv = ["--error-format", "json", "ledger", "verify", "--format", "json", "--ledger", str(copy)]
    assert main(argv + (extra if checkpoint else [])) == status
    out, err = capsys.readouterr()
    found = json.loads(out)["findings"] if status == 1 else json.loads(err)["errors"]
    assert found[0]["code"] == code


def test_the_untouched_copy_is_intact(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--ledger", str(recorded / "ledger.db"),
                 "--checkpoint", str(recorded / "checkpoint"), "--verifier-key", str(recorded / "ledger.key.pub")]) == 0
    assert "ledger intact: 2 events checked" in capsys.readouterr().out




@pytest.mark.parametrize("command", [["replay", "--all"], ["ledger", "export", "--out", "EXPORT"], ["ledger", "alerts"],
                                     ["ledger", "user", "list"]])
def test_a_payload_that_is_not_json_is_a_database_error_in_every_reader(
        command: list[str], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "ledger.db"
    copy.write_bytes((recorded / "ledger.db").read_bytes())
    db = sqlite3.connect(copy, isolation_level=None)
    _drop_triggers(db)
    db.execute("UPDATE events SET payload = '{not json' WHERE seq = 2")
    db.close()
    capsys.readouterr()
    argv = [str(tmp_path / "export") if part == "EXPORT" else part for part in command]
    assert main(["--error-format", "json", *argv, "--ledger", str(copy)]) in (0, 6)
    err = capsys.readouterr().err
    assert "internal error" not in err
    if err:
        assert json.loads(err)["errors"][0] == {**json.loads(err)["errors"][0], "code": "ledger-database-error",
                                                "pointer": "/events/2"}
