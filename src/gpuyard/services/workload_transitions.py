"""The one place a workload's status changes: checked against the domain table, recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gpuyard.domain.workload_state import TERMINAL, WorkloadStatus, check_transition
from gpuyard.store.workload_tables import WorkloadEventRow, WorkloadRow


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


def record_submission(session: Session, workload: WorkloadRow, now: datetime) -> None:
    """The first event of a workload: it entered the queue."""
    session.add(
        WorkloadEventRow(
            workload_id=workload.id,
            at=now,
            from_status=None,
            to_status=WorkloadStatus.PENDING.value,
            reason="submitted",
            details={},
        )
    )


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
