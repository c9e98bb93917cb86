"""The audit log: append-only, each row chained to the previous one by a hash.

Rows are only ever inserted, through store.audit_log.append_audit_event, which numbers
them 1, 2, 3... (the id is part of what is hashed, so a deleted row leaves a gap) and
sets ``hash = sha256(prev_hash + canonical JSON of the row)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    # Assigned by append_audit_event (previous id + 1) under the chain lock, not by the DB.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    # No foreign key: the log outlives the users it mentions.
    actor_id: Mapped[str | None] = mapped_column(String(32), index=True)
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (
        Index("ix_audit_events_target", "target_type", "target_id"),
        # Each user's last login (store.audit_log.last_logins), without a scan of all
        # logins: an index seek per user.
        Index("ix_audit_events_actor_action_at", "actor_id", "action", "at"),
    )
