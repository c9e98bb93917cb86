"""The one place a workload's status changes: checked against the domain's transition
table, written by a compare-and-set on ``workloads.version``, recorded as events.

Every status change goes through :func:`transition_workload` (one workload the caller has
loaded) or :class:`StatusAdvances` (many, by id and the version seen); both plan the change
with :func:`_plan` and write it with the set-based statements of
``store/workload_status.py``. A row changed since it was read raises
:class:`StaleWorkload`, a ``StaleDataError``, so callers retry it as they retry a stale
ORM flush.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.workload_state import TERMINAL, WorkloadStatus, check_transition
from gpuyard.store.workload_status import (
    advance_workloads,
    claim_workloads,
    insert_workload_events,
)
from gpuyard.store.workload_tables import WorkloadRow


class StaleWorkload(StaleDataError):
    """The workload row changed since the caller read it (version compare-and-set failed).

    A ``StaleDataError``, as the ORM's own version check raises: callers that retry one
    retry the other."""


def _plan(
    workload_id: str,
    seen_version: int,
    current: WorkloadStatus,
    steps: list[tuple[WorkloadStatus, str | None]],
    now: datetime,
    reason_code: str | None,
    details: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The row values and the events of moving ``workload_id`` through ``steps`` (each
    checked against the transition table, raising InvalidTransition)."""
    events = []
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
    row = {
        "workload_id": workload_id,
        "seen_version": seen_version,
        "status": status.value,
        "reason": steps[-1][1],
        "reason_code": reason_code,
        "now": now,
        "started_at": now if status is WorkloadStatus.RUNNING else None,
        "finished_at": now if status in TERMINAL else None,
        "pending_since": now if status is WorkloadStatus.PENDING else None,
    }
    return row, events


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
    append an event, by a compare-and-set on the version ``workload`` was loaded at
    (StaleWorkload if it changed since); the caller's transaction commits both. The
    loaded object is updated to match, so later ORM changes to it flush against the new
    version."""
    current = WorkloadStatus(workload.status)
    row, events = _plan(
        workload.id, workload.version, current, [(target, reason)], now, reason_code, details
    )
    if advance_workloads(session, [row]) != 1:
        raise StaleWorkload(_stale_message([row]))
    insert_workload_events(session, events)
    # What the UPDATE wrote, as committed state: the ORM then neither writes it again nor
    # checks the old version on its next flush of this object.
    committed = {
        "version": workload.version + 1,
        "status": row["status"],
        "reason": reason,
        "reason_code": reason_code,
        "updated_at": now,
    }
    for column in ("started_at", "finished_at", "pending_since"):
        if row[column] is not None:
            committed[column] = now
    for key, value in committed.items():
        set_committed_value(workload, key, value)


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
    status = workload.status
    insert_workload_events(
        session,
        [
            {
                "workload_id": workload.id,
                "at": now,
                "from_status": status,
                "to_status": status,
                "reason": reason,
                "details": details,
            }
        ],
    )


@dataclass
class StatusAdvances:
    """Workloads to move on together, each by a compare-and-set on its ``version`` and one
    event per step: :func:`transition_workload` for many workloads at once, by id, with
    one statement per table (the scheduler's apply, the lifecycle batch)."""

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
        row, events = _plan(workload_id, seen_version, current, list(steps), now, None, details)
        self.rows.append(row)
        self.events += events

    def claim(self, workload_id: str, seen_version: int) -> None:
        """Claim ``workload_id`` without changing its status (more replicas of it)."""
        self.claims.append({"workload_id": workload_id, "seen_version": seen_version})

    def write(self, session: Session) -> None:
        """Execute them all; StaleWorkload if any row changed since it was seen (the
        caller rolls back)."""
        if self.claims and claim_workloads(session, self.claims) != len(self.claims):
            raise StaleWorkload(_stale_message(self.claims))
        if self.rows and advance_workloads(session, self.rows) != len(self.rows):
            raise StaleWorkload(_stale_message(self.rows))
        insert_workload_events(session, self.events)


def _stale_message(rows: list[dict[str, Any]]) -> str:
    if len(rows) == 1:
        return f"workload {rows[0]['workload_id']} changed since the snapshot"
    return "a workload of the batch changed since the snapshot"
