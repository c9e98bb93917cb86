"""The audit chain: append (inside the caller's transaction), list and verify.

``hash = sha256(prev_hash + canonical JSON of the row's other columns)``, where the
canonical JSON has sorted keys, no spaces and UTC ISO-8601 times with microseconds; the
first row's ``prev_hash`` is 64 zeros. Ids run 1, 2, 3... and are hashed too, so an
edited row breaks its own hash, a deleted row leaves a gap, and a re-hashed edit breaks
the next row's link.

Writers are serialised so the chain stays linear: on PostgreSQL a transaction-level
advisory lock (held until the appending transaction commits or rolls back); on SQLite
every write transaction already holds the database's write lock (BEGIN IMMEDIATE). The
primary key is the last line of defence: two appenders that raced would both pick the
same id and one would fail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, Table, event, func, insert, or_, select, text
from sqlalchemy.orm import Session

from gpuyard.domain.audit import LOGIN_ACTION, AuditEvent, AuditFilter, ChainReport
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.base import as_utc

GENESIS_HASH = "0" * 64
# Any fixed 64-bit number; only gpuyard's audit appenders take this advisory lock.
_AUDIT_CHAIN_LOCK_ID = 0x67707961756469
_HEAD = "gpuyard_audit_chain_head"
_AUDIT_TABLE = cast(Table, AuditEventRow.__table__)
_LAST_LINK = select(AuditEventRow.id, AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)
_INSERT_EVENT = insert(_AUDIT_TABLE)


@dataclass(frozen=True)
class AuditEntry:
    """What a service records; the chain adds id, prev_hash and hash."""

    at: datetime
    actor_id: str | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    details: dict[str, Any]


def canonical_time(value: datetime) -> str:
    return as_utc(value).astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(
    event_id: int, entry: AuditEntry, prev_hash: str, details: dict[str, Any] | None = None
) -> str:
    body = {
        "id": event_id,
        "at": canonical_time(entry.at),
        **_who_and_what(entry),
        "details": entry.details if details is None else details,
    }
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


def _who_and_what(entry: AuditEntry) -> dict[str, Any]:
    """The fields an event stores and hashes as they are (its id, time and details are
    each written in their own form)."""
    return {
        "actor_id": entry.actor_id,
        "actor_email": entry.actor_email,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "ip": entry.ip,
    }


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_CHAIN_LOCK_ID})
    # SQLite: the write transaction began with BEGIN IMMEDIATE and holds the write lock.


def _chain_head(session: Session) -> tuple[int, str]:
    """The last event's id and hash, read once per transaction.

    The chain lock is held from the first append until the transaction ends, so within it
    no other writer can append, and a batch of appends (a group commit of submissions)
    needs the head only once. The cached head is dropped whenever any transaction or
    savepoint of the session ends: a savepoint rolled back after an append must not leave
    a head that points at a row that no longer exists."""
    head: tuple[int, str] | None = session.info.get(_HEAD)
    if head is None:
        _lock_chain(session)
        last = session.execute(_LAST_LINK).first()
        head = (last[0], last[1]) if last else (0, GENESIS_HASH)
    return head


# On the class, once: a listener per session costs more than the event itself.
@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, _transaction: object) -> None:
    session.info.pop(_HEAD, None)


def append_audit_event(session: Session, entry: AuditEntry) -> AuditEvent:
    """Add ``entry`` as the next link of the chain, in the caller's transaction."""
    return append_audit_events(session, [entry])[0]


def append_audit_events(session: Session, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Add ``entries`` as the next links of the chain, in order, in the caller's
    transaction: the hashes are chained here and the rows go out in one statement."""
    last_id, prev_hash = _chain_head(session)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        entry = replace(entry, at=as_utc(entry.at).astimezone(UTC))
        last_id += 1
        # What the database will give back (JSON round trip), so verification hashes the same.
        details = json.loads(canonical_json(entry.details))
        values = {
            "id": last_id,
            "at": entry.at,
            **_who_and_what(entry),
            "details": details,
            "prev_hash": prev_hash,
            "hash": chain_hash(last_id, entry, prev_hash, details),
        }
        prev_hash = values["hash"]
        rows.append(values)
    if not rows:
        return []
    # A Core insert: the ORM's unit of work costs more than the rows, and nobody reads the
    # events back in the same session.
    session.execute(_INSERT_EVENT, rows)
    session.info[_HEAD] = (last_id, prev_hash)
    return [AuditEvent(**values) for values in rows]


def audit_event_of(row: AuditEventRow) -> AuditEvent:
    """The read model of a stored event."""
    return AuditEvent(
        id=row.id,
        at=as_utc(row.at),
        actor_id=row.actor_id,
        actor_email=row.actor_email,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        ip=row.ip,
        details=dict(row.details or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _matching(where: AuditFilter) -> Select[AuditEventRow]:
    query = select(AuditEventRow)
    if where.actor:
        query = query.where(
            or_(
                AuditEventRow.actor_id == where.actor,
                func.lower(AuditEventRow.actor_email) == where.actor.lower(),
            )
        )
    if where.action:
        if where.action.endswith("."):
            query = query.where(AuditEventRow.action.startswith(where.action, autoescape=True))
        else:
            query = query.where(AuditEventRow.action == where.action)
    if where.target_type:
        query = query.where(AuditEventRow.target_type == where.target_type)
    if where.target_id:
        query = query.where(AuditEventRow.target_id == where.target_id)
    if where.since:
        query = query.where(AuditEventRow.at >= as_utc(where.since).astimezone(UTC))
    if where.until:
        query = query.where(AuditEventRow.at < as_utc(where.until).astimezone(UTC))
    return query


def list_audit_events(
    session: Session, where: AuditFilter, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """Events matching ``where``, newest first, with the total count."""
    query = _matching(where)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEventRow.id.desc()).limit(limit).offset(offset))
    return [audit_event_of(row) for row in rows], count


def entry_of(row: AuditEventRow | AuditEvent) -> AuditEntry:
    return AuditEntry(
        at=row.at,
        actor_id=row.actor_id,
        actor_email=row.actor_email,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        ip=row.ip,
        details=dict(row.details or {}),
    )


#: Events verified per batch: each batch is its own short read transaction, so a walk
#: of a long chain never holds one snapshot open (on PostgreSQL that would hold back
#: xmin for every other reader's change marks).
VERIFY_BATCH = 5000


@dataclass(frozen=True)
class ChainWalk:
    """Where a walk of the chain stands between batches: the id it expects next, the hash
    that event must link to, and how many events verified so far."""

    next_id: int = 1
    prev_hash: str = GENESIS_HASH
    checked: int = 0


def verify_audit_batch(
    session: Session, walk: ChainWalk, limit: int = VERIFY_BATCH
) -> ChainWalk | ChainReport:
    """Verify the next ``limit`` events of ``walk``: the walk carried on, or the report
    once done (the first row that does not verify, or the end of the chain)."""
    rows = session.scalars(
        select(AuditEventRow)
        .where(AuditEventRow.id >= walk.next_id)
        .order_by(AuditEventRow.id)
        .limit(limit)
    ).all()
    expected_id, expected_prev, checked = walk.next_id, walk.prev_hash, walk.checked
    for row in rows:
        if row.id != expected_id:
            return ChainReport(checked, row.id, f"events {expected_id}..{row.id - 1} are missing")
        if row.prev_hash != expected_prev:
            return ChainReport(checked, row.id, "does not link to the previous event's hash")
        if chain_hash(row.id, entry_of(row), row.prev_hash) != row.hash:
            return ChainReport(checked, row.id, "content does not match its hash (edited)")
        expected_id, expected_prev, checked = row.id + 1, row.hash, checked + 1
    if len(rows) < limit:
        return ChainReport(checked, head_hash=expected_prev if checked else None)
    return ChainWalk(expected_id, expected_prev, checked)


def verify_audit_chain(session: Session, batch: int = 1000) -> ChainReport:
    """Walk the chain from the first row in ``session`` (one transaction); report the
    first row that does not verify. A long chain is better walked batch by batch, each
    in its own transaction (``services.identity.audit.verify_audit_log``)."""
    walk = ChainWalk()
    while True:
        result = verify_audit_batch(session, walk, batch)
        session.expunge_all()
        if isinstance(result, ChainReport):
            return result
        walk = result


def last_logins(session: Session, user_ids: Collection[str]) -> dict[str, datetime]:
    """{user id: time of their last successful login} for those of ``user_ids`` who ever
    logged in, in one query."""
    if not user_ids:
        return {}
    e = AuditEventRow
    query = (
        select(e.actor_id, func.max(e.at))
        .where(e.action == LOGIN_ACTION, e.actor_id.in_(list(user_ids)))
        .group_by(e.actor_id)
    )
    return {actor: as_utc(at) for actor, at in session.execute(query) if actor is not None}
