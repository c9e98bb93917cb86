"""The audit log as services use it: record an event inside the action's own transaction,
list events, verify the chain.

Every mutating service calls :func:`record_audit` in the same ``ctx.db.write()`` block
as the change it describes, so the change and its audit row commit (or roll back)
together. After the commit the event is also logged as one JSON line on the
``gpuyard.audit`` logger. Details never carry secrets: keys that name one are redacted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from gpuyard.auth.caller import Caller
from gpuyard.domain.audit import AuditEvent, AuditFilter, ChainReport
from gpuyard.log import AUDIT_LOGGER, get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.store import audit_log as audit_store
from gpuyard.store.audit_log import AuditEntry
from gpuyard.store.database import Database

audit_log = get_logger(AUDIT_LOGGER)

# Detail keys that name a secret: "password", "agent_token", "invite_code", "kubeconfig"...
_SECRET_KEY = re.compile(r"(^|_)(password|token|secret|kubeconfig|code|key)$", re.IGNORECASE)
_REDACTED = "[redacted]"
_PENDING = "gpuyard_audit_pending"


@dataclass(frozen=True)
class AuditActor:
    """Who did it and from where; ``user_id`` is None for the system and for anonymous
    attempts (a failed login records the email that was tried)."""

    user_id: str | None
    email: str | None
    ip: str | None = None

    @classmethod
    def of(cls, caller: Caller) -> AuditActor:
        return cls(caller.user_id, caller.email, caller.ip)


SYSTEM_ACTOR = AuditActor(None, "system")


def redact(details: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if _SECRET_KEY.search(key):
            clean[key] = _REDACTED
        elif isinstance(value, dict):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def record_audit(
    session: Session,
    actor: AuditActor,
    action: str,
    target_type: str,
    target_id: str | None,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event to the chain in ``session``'s transaction."""
    entry = audit_entry(actor, action, target_type, target_id, at, details)
    return record_audit_entries(session, [entry])[0]


def audit_entry(
    actor: AuditActor,
    action: str,
    target_type: str,
    target_id: str | None,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """An audit event as :func:`record_audit_entries` takes it (secrets redacted)."""
    return AuditEntry(
        at=at,
        actor_id=actor.user_id,
        actor_email=actor.email,
        action=action,
        target_type=target_type,
        target_id=target_id,
        ip=actor.ip,
        details=redact(details or {}),
    )


def record_audit_entries(session: Session, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Append ``entries`` to the chain in ``session``'s transaction, in one statement (a
    group commit of submissions audits its whole batch at once)."""
    rows = audit_store.append_audit_events(session, entries)
    for row in rows:
        _log_after_commit(session, row)
    return rows


def _log_after_commit(session: Session, row: AuditEvent) -> None:
    # Each line remembers the savepoint it was written in (None: the outer transaction),
    # so rolling back a savepoint drops its own lines and no others.
    pending: list[tuple[SessionTransaction | None, dict[str, Any]]]
    pending = session.info.setdefault(_PENDING, [])
    fields = {
        "audit_id": row.id,
        "at": audit_store.canonical_time(row.at),
        "actor_id": row.actor_id,
        "actor_email": row.actor_email,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "ip": row.ip,
        "details": row.details,
        "hash": row.hash,
    }
    pending.append((session.get_nested_transaction(), fields))


# Listening on the class, once: a listener per session costs more than the event itself.
# SQLAlchemy fires both events for savepoints too: a released savepoint is not a commit.
@event.listens_for(Session, "after_commit")
def _emit_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for _, fields in session.info.pop(_PENDING, []):
        audit_log.info("audit_event", **fields)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is None:
        session.info.pop(_PENDING, None)
        return
    pending = session.info.get(_PENDING, [])
    pending[:] = [(tx, f) for tx, f in pending if not _within(tx, savepoint)]


def _within(tx: SessionTransaction | None, savepoint: SessionTransaction) -> bool:
    while tx is not None:
        if tx is savepoint:
            return True
        tx = tx.parent
    return False


def list_audit_events(
    ctx: ServiceContext, where: AuditFilter, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """Events matching ``where``, newest first, with the total count."""
    with ctx.db.read() as session:
        return audit_store.list_audit_events(session, where, limit, offset)


def verify_audit_log(db: Database, batch: int = audit_store.VERIFY_BATCH) -> ChainReport:
    """Check the whole chain (``gpuyard audit verify`` and GET /audit/verify), ``batch``
    events per short read transaction, carrying the previous hash from one to the next:
    no snapshot stays open for the whole walk. Events appended meanwhile extend the walk
    (the chain only grows at its end); rows edited or deleted are found where they are."""
    walk = audit_store.ChainWalk()
    while True:
        with db.read() as session:
            result = audit_store.verify_audit_batch(session, walk, batch)
        if isinstance(result, ChainReport):
            return result
        walk = result


def verify_audit_chain(ctx: ServiceContext) -> ChainReport:
    """Check the whole chain of the context's database (GET /audit/verify)."""
    return verify_audit_log(ctx.db)
