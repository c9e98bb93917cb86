"""Server status events: appended with each status change, listed oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpuyard.domain.fleet_records import ServerEvent
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerEventRow


def add_server_event(
    session: Session,
    server_id: str,
    at: datetime,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    actor_id: str | None,
    details: dict[str, Any],
) -> None:
    """Append one event; the caller's transaction commits it with the status change."""
    session.add(
        ServerEventRow(
            server_id=server_id,
            at=at,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor_id=actor_id,
            details=details,
        )
    )


def server_event_record(row: ServerEventRow) -> ServerEvent:
    """The read model of a server event row."""
    return ServerEvent(
        id=row.id,
        at=as_utc(row.at),
        from_status=row.from_status,
        to_status=row.to_status,
        reason=row.reason,
        details=dict(row.details or {}),
    )


def server_events_page(
    session: Session, server_id: str, limit: int, offset: int
) -> tuple[list[ServerEvent], int]:
    """One page of a server's events, oldest first, and how many there are in all."""
    base = select(ServerEventRow).where(ServerEventRow.server_id == server_id)
    count = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(ServerEventRow.id).limit(limit).offset(offset)).all()
    return [server_event_record(row) for row in rows], count


def last_server_event(session: Session, server_id: str) -> ServerEvent | None:
    """The server's latest event, or None when it has none."""
    row = session.scalar(
        select(ServerEventRow)
        .where(ServerEventRow.server_id == server_id)
        .order_by(ServerEventRow.id.desc())
        .limit(1)
    )
    return server_event_record(row) if row is not None else None
