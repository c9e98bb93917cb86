"""The one place a server's status changes: checked against the domain's transition
table, recorded as a server event with its reason (as workload status changes are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from gpuyard.domain.errors import NotFound
from gpuyard.domain.fleet_records import ServerEvent
from gpuyard.domain.server_state import ServerStatus, check_server_transition
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor
from gpuyard.store.fleet import server_status_record, set_server_status
from gpuyard.store.server_events import add_server_event, server_events_page


class HasStatus(Protocol):
    """A server as read in the caller's transaction: its id and its status then."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...


def change_server_status(
    session: Session,
    server: HasStatus,
    to: ServerStatus,
    reason: str,
    actor: AuditActor,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> bool:
    """Move ``server`` to ``to`` (InvalidTransition, naming ``status``, if the table does
    not allow it) and record an event; the caller's transaction commits both. Setting the
    status it already has changes nothing and records nothing: False."""
    current = ServerStatus(server.status)
    if to is current:
        return False
    check_server_transition(current, to)
    set_server_status(session, server.id, to.value)
    add_server_event(
        session, server.id, now, current.value, to.value, reason, actor.user_id, details or {}
    )
    return True


def list_server_events(
    ctx: ServiceContext, server_id: str, limit: int, offset: int
) -> tuple[list[ServerEvent], int]:
    """Status history of a server, oldest first (it reads as a story)."""
    with ctx.db.read() as session:
        if server_status_record(session, server_id) is None:
            raise NotFound.for_object("server", server_id)
        return server_events_page(session, server_id, limit, offset)
