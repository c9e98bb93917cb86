"""Workload status writes: compare-and-set UPDATEs on ``workloads.version`` and event rows.

The statements are built once (the scheduler's batch apply runs them for every
admission) and executed on the session's connection with ``executemany``, one statement
per table. Each UPDATE matches only the version its caller saw; the functions return the
row count and the service decides what a short count means. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, update
from sqlalchemy.orm import Session

from gpuyard.store.workload_tables import WORKLOADS_TABLE, WorkloadEventRow

_w = WORKLOADS_TABLE.c

#: Bump the version of a workload still at ``seen_version``, nothing else.
_CLAIM = (
    update(WORKLOADS_TABLE)
    .where(_w.id == bindparam("workload_id"), _w.version == bindparam("seen_version"))
    .values(version=_w.version + 1)
)
#: Set a new status (and what comes with it) on a workload still at ``seen_version``.
_ADVANCE = _CLAIM.values(
    status=bindparam("status"),
    reason=bindparam("reason"),
    reason_code=bindparam("reason_code"),
    updated_at=bindparam("now"),
    # Set only for the statuses that start their clock (NULL keeps the stored value).
    # Typed, so they are stored as the ORM stores them (inside coalesce they would not be).
    started_at=func.coalesce(bindparam("started_at", type_=_w.started_at.type), _w.started_at),
    finished_at=func.coalesce(bindparam("finished_at", type_=_w.finished_at.type), _w.finished_at),
    pending_since=func.coalesce(
        bindparam("pending_since", type_=_w.pending_since.type), _w.pending_since
    ),
)
#: A new pending reason, no version bump (not a state change), only on the version seen.
_RECORD_REASON = (
    update(WORKLOADS_TABLE)
    .where(_w.id == bindparam("wid"), _w.version == bindparam("seen"))
    .values(reason=bindparam("new_reason"), reason_code=bindparam("new_code"))
)
_INSERT_EVENTS = insert(cast(Table, WorkloadEventRow.__table__))


def claim_workloads(session: Session, claims: Sequence[dict[str, Any]]) -> int:
    """Bump the version of each ``{workload_id, seen_version}``; how many rows matched."""
    if not claims:
        return 0
    return int(session.connection().execute(_CLAIM, claims).rowcount)


def advance_workloads(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Write each ``{workload_id, seen_version, status, reason, reason_code, now,
    started_at, finished_at, pending_since}``; how many rows matched their version."""
    if not rows:
        return 0
    return int(session.connection().execute(_ADVANCE, rows).rowcount)


def insert_workload_events(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Append workload events (``workload_id, at, from_status, to_status, reason,
    details``)."""
    if events:
        session.connection().execute(_INSERT_EVENTS, events)


def write_pending_reasons(session: Session, reasons: Sequence[dict[str, Any]]) -> None:
    """Write each ``{wid, seen, new_reason, new_code}`` where the row is still at ``seen``;
    a row that moved on is left alone (the next cycle writes its reason)."""
    session.execute(_RECORD_REASON, reasons)
