"""The one place a workload's status changes: checked against the domain table, recorded."""

from __future__ import annotations

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
    started_at=func.coalesce(bindparam("started_at"), _w.started_at),
)
_INSERT_EVENTS = insert(cast(Table, WorkloadEventRow.__table__))


def advance_workload_status(
    session: Session,
    workload_id: str,
    seen_version: int,
    current: WorkloadStatus,
    steps: list[tuple[WorkloadStatus, str]],
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """The set-based twin of :func:`transition_workload` for the scheduler's batch apply:
    checks every step against the transition table, moves the row to the last step with a
    compare-and-set on ``version`` (raising StaleWorkload when someone else changed it),
    and appends one event per step. Same rules, no ORM object in the way."""
    events: list[dict[str, Any]] = []
    status = current
    for target, reason in steps:
        check_transition(status, target)
        events.append(
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
    conn = session.connection()
    params = {
        "workload_id": workload_id,
        "seen_version": seen_version,
        "status": status.value,
        "reason": steps[-1][1],
        "now": now,
        "started_at": now if status is WorkloadStatus.RUNNING else None,
    }
    if conn.execute(_ADVANCE, params).rowcount != 1:
        raise StaleWorkload(f"workload {workload_id} changed since the snapshot")
    conn.execute(_INSERT_EVENTS, events)


def bump_workload_version(session: Session, workload_id: str, seen_version: int) -> None:
    """Claim a workload row without changing its status (more replicas of a running one)."""
    params = {"workload_id": workload_id, "seen_version": seen_version}
    if session.connection().execute(_CLAIM, params).rowcount != 1:
        raise StaleWorkload(f"workload {workload_id} changed since the snapshot")
