"""The one place a workload's status changes: checked against the domain table, recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, update
from sqlalchemy.orm import Session

from gpuyard.domain.workload_state import TERMINAL, WorkloadStatus, check_transition
from gpuyard.store.workload_tables import WORKLOADS_TABLE, WorkloadEventRow, WorkloadRow


def transition_workload(
    session: Session,
    workload: WorkloadRow,
    target: WorkloadStatus,
    reason: str | None,
    now: datetime,
    *,
    reason_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Move ``workload`` to ``target`` (raising InvalidTransition if not allowed) and
    append an event; the caller's transaction commits both together."""
    current = WorkloadStatus(workload.status)
    check_transition(current, target)
    workload.status = target.value
    workload.reason = reason
    workload.reason_code = reason_code
    workload.updated_at = now
    if target is WorkloadStatus.PENDING:
        workload.pending_since = now
    if target is WorkloadStatus.RUNNING:
        workload.started_at = now
    if target in TERMINAL:
        workload.finished_at = now
    session.add(
        WorkloadEventRow(
            workload_id=workload.id,
            at=now,
            from_status=current.value,
            to_status=target.value,
            reason=reason,
            details=details or {},
        )
    )


def submission_event(workload_id: str, at: datetime) -> dict[str, Any]:
    """The first event of a workload (it entered the queue), as values to insert."""
    return {
        "workload_id": workload_id,
        "at": at,
        "from_status": None,
        "to_status": WorkloadStatus.PENDING.value,
        "reason": "submitted",
        "details": {},
    }


def record_change(
    session: Session, workload: WorkloadRow, reason: str, now: datetime, details: dict[str, Any]
) -> None:
    """An event that is not a status change (a resize in place, a new priority)."""
    session.add(
        WorkloadEventRow(
            workload_id=workload.id,
            at=now,
            from_status=workload.status,
            to_status=workload.status,
            reason=reason,
            details=details,
        )
    )


class StaleWorkload(Exception):
    """The workload row changed since the caller read it (version compare-and-set failed)."""


_w = WORKLOADS_TABLE.c
# Built once: the scheduler's batch apply runs these for every admission.
_CLAIM = (
    update(WORKLOADS_TABLE)
    .where(_w.id == bindparam("workload_id"), _w.version == bindparam("seen_version"))
    .values(version=_w.version + 1)
)
_ADVANCE = _CLAIM.values(
    status=bindparam("status"),
    reason=bindparam("reason"),
    reason_code=None,
    updated_at=bindparam("now"),
    # Set when the last step is running / terminal / pending, as transition_workload does.
    # Typed, so they are stored as the ORM stores them (inside coalesce they would not be).
    started_at=func.coalesce(bindparam("started_at", type_=_w.started_at.type), _w.started_at),
    finished_at=func.coalesce(bindparam("finished_at", type_=_w.finished_at.type), _w.finished_at),
    pending_since=func.coalesce(
        bindparam("pending_since", type_=_w.pending_since.type), _w.pending_since
    ),
)
_INSERT_EVENTS = insert(cast(Table, WorkloadEventRow.__table__))


@dataclass
class StatusAdvances:
    """Workloads to move on together, each by a compare-and-set on its ``version`` and one
    event per step: the set-based twin of :func:`transition_workload` for the scheduler's
    apply. Same transition rules, no ORM object in the way, one statement per table."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Workloads that only get more replicas: claimed (version bumped), status unchanged.
    claims: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        workload_id: str,
        seen_version: int,
        current: WorkloadStatus,
        steps: list[tuple[WorkloadStatus, str]],
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Move ``workload_id`` through ``steps`` (each checked against the transition
        table) to the last one."""
        status = current
        for target, reason in steps:
            check_transition(status, target)
            self.events.append(
                {
                    "workload_id": workload_id,
                    "at": now,
                    "from_status": status.value,
                    "to_status": target.value,
                    "reason": reason,
                    "details": details or {},
                }
            )
            status = target
        self.rows.append(
            {
                "workload_id": workload_id,
                "seen_version": seen_version,
                "status": status.value,
                "reason": steps[-1][1],
                "now": now,
                "started_at": now if status is WorkloadStatus.RUNNING else None,
                "finished_at": now if status in TERMINAL else None,
                "pending_since": now if status is WorkloadStatus.PENDING else None,
            }
        )

    def claim(self, workload_id: str, seen_version: int) -> None:
        """Claim ``workload_id`` without changing its status (more replicas of it)."""
        self.claims.append({"workload_id": workload_id, "seen_version": seen_version})

    def write(self, session: Session) -> None:
        """Execute them all; StaleWorkload if any row changed since it was seen (the
        caller rolls back)."""
        conn = session.connection()
        if self.claims and conn.execute(_CLAIM, self.claims).rowcount != len(self.claims):
            raise StaleWorkload(_stale_message(self.claims))
        if self.rows and conn.execute(_ADVANCE, self.rows).rowcount != len(self.rows):
            raise StaleWorkload(_stale_message(self.rows))
        if self.events:
            conn.execute(_INSERT_EVENTS, self.events)


def _stale_message(rows: list[dict[str, Any]]) -> str:
    if len(rows) == 1:
        return f"workload {rows[0]['workload_id']} changed since the snapshot"
    return "a workload of the batch changed since the snapshot"
