"""``verify`` re-derives authority from the chain: each forged step is a located finding.

Each case appends, as an insider with write access to the SQLite file would, a correctly chained
event (right number, right link, right hash) that the workflow itself would have refused; the
chain check passes it, the authority check names it. (On PostgreSQL such an event also carries
the inserting role as its actor, which test_append_only.py shows.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fairalloc.ledger import workflow
from fairalloc.ledger.chain import canonical_json, event_canonical, link_hash
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import verify

from .helpers import me, publish, record_through_fills, staff, trade_doc, who


@pytest.fixture
def firm(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        staff(ledger)
        publish(ledger)
        yield ledger, path


def forge(ledger: Ledger, path: Path, kind: str, actor: str, payload: Any, *, topic: str | None = None,
          order_id: str | None = None, source: str | None = "os-user", service: str | None = None) -> int:
    """Append one correctly chained event by hand; returns its number."""
    with ledger.read() as session:
        head = session.head()
    assert head is not None
    seq = head.seq + 1
    when = head.recorded_at
    text = canonical_json(payload)
    digest = link_hash(head.hash, event_canonical(seq, when, actor, kind, order_id, None, topic, text,
                                                  source, service, None))
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, when, actor, kind, order_id, None, topic, text, head.hash, digest, source,
                 service, None))
    raw.commit()
    raw.close()
    return seq


def _found(ledger: Ledger) -> list[tuple[str, str | None]]:
    with ledger.read() as session:
        return [(d.code, d.location.pointer) for d in verify(session).findings]


def test_a_workflow_day_verifies(firm: tuple[Ledger, Path]) -> None:
    ledger, _ = firm
    doc = record_through_fills(ledger, trade_doc())
    workflow.allocate_order(ledger, who(ledger, "tom"), doc["order"]["id"])
    assert _found(ledger) == []


def test_a_review_by_the_requester_is_found(firm: tuple[Ledger, Path]) -> None:
    ledger, path = firm
    workflow.set_role(ledger, me(ledger), "tom", "cco", grant=True)  # tom may review, not his own
    doc = record_through_fills(ledger, trade_doc())
    order_id = doc["order"]["id"]
    workflow.allocate_order(ledger, who(ledger, "tom"), order_id)
    moved = {"CLIENT-A": Decimal(14900), "CLIENT-B": Decimal(6000), "CLIENT-C": Decimal(3100),
             "PROPRIETARY": Decimal(6000)}
    request = workflow.request_override(ledger, who(ledger, "tom"), order_id, moved, "ODD-LOT-CLEANUP",
                                        "odd lot")
    seq = forge(ledger, path, "override.reviewed", "tom",
                {"override_seq": request.seq, "decision": "approved", "memo": ""},
                order_id=order_id, topic="overrides", source="token", service=me(ledger).name)
    assert _found(ledger) == [("authority-self-review", f"/events/{seq}")]


def test_a_grant_by_a_former_admin_is_found_and_gives_nothing(firm: tuple[Ledger, Path]) -> None:
    ledger, path = firm
    workflow.set_role(ledger, me(ledger), "ada", "admin", grant=False)
    seq = forge(ledger, path, "user.role_granted", "ada", {"user": "mallory", "role": "cco"},
                topic="user:mallory", source="token", service=me(ledger).name)
    review = forge(ledger, path, "policy.published", "mallory", {"forged": True}, source="token",
                   service=me(ledger).name)
    assert _found(ledger) == [("authority-role-missing", f"/events/{seq}"),
                              ("authority-role-missing", f"/events/{review}")]


def test_a_token_event_by_a_service_without_the_service_role(firm: tuple[Ledger, Path]) -> None:
    ledger, path = firm
    seq = forge(ledger, path, "policy.published", "cole", {"forged": True}, source="token",
                service="rogue.service")
    assert _found(ledger) == [("authority-service-missing", f"/events/{seq}")]


def test_a_late_bootstrap_the_last_admin_removed_and_stray_events(firm: tuple[Ledger, Path]) -> None:
    ledger, path = firm
    late = forge(ledger, path, "user.role_granted", "mallory",
                 {"user": "mallory", "role": "admin", "bootstrap": True}, topic="user:mallory")
    stray = forge(ledger, path, "test.event", "ada", {})
    orphan = forge(ledger, path, "alert.raised", "mallory", {"alert": "x"})  # not the step before
    me_name = me(ledger).name
    revoke_ada = forge(ledger, path, "user.role_revoked", me_name, {"user": "ada", "role": "admin"},
                       topic="user:ada")
    revoke_me = forge(ledger, path, "user.role_revoked", me_name, {"user": me_name, "role": "admin"},
                      topic=f"user:{me_name}")
    assert revoke_ada
    assert _found(ledger) == [("authority-bootstrap-late", f"/events/{late}"),
                              ("authority-unexpected-event", f"/events/{stray}"),
                              ("authority-unexpected-event", f"/events/{orphan}"),
                              ("authority-last-admin-removed", f"/events/{revoke_me}")]


def test_a_ledger_that_does_not_begin_with_its_bootstrap(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        sqlite3.connect(path).close()
        with ledger.write(bootstrap=True) as session:  # the engine's lowest layer, no workflow
            from fairalloc.ledger.store import NewEvent

            session.append(NewEvent("policy.published", me(ledger), {"id": "x"}))
        found = _found(ledger)
    assert found == [("authority-no-bootstrap", "/events/1"), ("authority-role-missing", "/events/1")]


def test_findings_are_bounded(firm: tuple[Ledger, Path]) -> None:
    ledger, path = firm
    for _ in range(120):
        forge(ledger, path, "test.event", "ada", {})
    with ledger.read() as session:
        findings = verify(session).findings
    assert len(findings) == 101 and "20 more" in findings[-1].message
    assert json.loads(json.dumps([d.to_json() for d in findings]))  # all serialisable
