"""The audit chain stays linear under concurrent writers, and every kind of tampering is
caught at the row where it happened; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import delete, event, select, update

from gpuyard.services.identity.audit import (
    AuditActor,
    audit_entry,
    record_audit,
    record_audit_entries,
    verify_audit_log,
)
from gpuyard.store.audit_log import chain_hash, entry_of, verify_audit_chain
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.database import Database

ACTOR = AuditActor("u1", "dev@example.com", "10.0.0.7")


def _append(db: Database, n: int, prefix: str = "w") -> None:
    for i in range(n):
        with db.write() as session:
            details = {"name": f"{prefix}-{i}", "gpu": 0.5, "labels": {"zone": "a"}}
            record_audit(
                session,
                ACTOR,
                "workload.create",
                "workload",
                f"{prefix}{i}",
                datetime.now(UTC),
                details,
            )


def _verify(db: Database) -> tuple[int, int | None, str | None]:
    with db.read() as session:
        report = verify_audit_chain(session)
    batched = verify_audit_log(db, batch=2)  # batches of 2, each its own transaction
    assert batched == report
    return report.checked, report.first_bad_id, report.problem


def test_concurrent_writers_keep_one_linear_chain(db: Database) -> None:
    threads = [threading.Thread(target=_append, args=(db, 10, f"t{t}-")) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.read() as session:
        ids = session.scalars(select(AuditEventRow.id).order_by(AuditEventRow.id)).all()
    assert ids == list(range(1, 61))
    assert _verify(db) == (60, None, None)


def test_a_batch_appends_chained_links_and_the_next_append_follows_it(db: Database) -> None:
    _append(db, 1)
    now = datetime.now(UTC)
    with db.write() as session:
        entries = [
            audit_entry(ACTOR, "workload.create", "workload", f"b{i}", now, {"token": "x"})
            for i in range(3)
        ]
        rows = record_audit_entries(session, entries)
        after = record_audit(session, ACTOR, "workload.delete", "workload", "b0", now)
    assert [r.id for r in rows] == [2, 3, 4]
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:2]]
    assert after.id == 5
    assert after.prev_hash == rows[-1].hash
    assert rows[0].details == {"token": "[redacted]"}
    assert _verify(db) == (5, None, None)


def test_an_edited_row_is_caught_at_that_row(db: Database) -> None:
    _append(db, 5)
    with db.write() as session:
        session.execute(update(AuditEventRow).where(AuditEventRow.id == 3).values(ip="192.168.1.1"))
    assert _verify(db) == (2, 3, "content does not match its hash (edited)")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(db: Database) -> None:
    _append(db, 5)
    with db.write() as session:
        row = session.get(AuditEventRow, 3)
        assert row is not None
        row.details = {"name": "innocent"}
        row.hash = chain_hash(row.id, entry_of(row), row.prev_hash)
    assert _verify(db) == (3, 4, "does not link to the previous event's hash")


def test_a_deleted_row_leaves_a_gap(db: Database) -> None:
    _append(db, 5)
    with db.write() as session:
        session.execute(delete(AuditEventRow).where(AuditEventRow.id == 2))
    assert _verify(db) == (1, 3, "events 2..2 are missing")


def test_an_empty_log_is_intact(db: Database) -> None:
    assert _verify(db) == (0, None, None)


def test_a_batched_walk_finds_what_the_one_transaction_walk_finds(db: Database) -> None:
    """GET /audit/verify walks the chain in short transactions, one per batch, carrying
    the previous hash; the report is the one-transaction walk's, tampering included."""
    _append(db, 23)
    with db.read() as session:
        whole = verify_audit_chain(session)
    assert whole.checked == 23
    assert whole.head_hash is not None
    transactions = 0

    def count(_conn: object) -> None:
        nonlocal transactions
        transactions += 1

    event.listen(db.engine, "begin", count)
    try:
        for batch in (1, 5, 22, 23, 24, 5000):
            transactions = 0
            assert verify_audit_log(db, batch=batch) == whole
            assert transactions == 23 // batch + 1  # the last batch finds the end
    finally:
        event.remove(db.engine, "begin", count)

    with db.write() as session:  # tampered with in the third batch of five
        session.execute(update(AuditEventRow).where(AuditEventRow.id == 12).values(ip="10.9.9.9"))
    with db.read() as session:
        tampered = verify_audit_chain(session)
    assert (tampered.checked, tampered.first_bad_id) == (11, 12)
    for batch in (1, 5, 11, 12, 5000):
        assert verify_audit_log(db, batch=batch) == tampered
