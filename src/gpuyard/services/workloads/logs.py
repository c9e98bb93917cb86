"""Workload logs. Simulated replicas have no process output: their log is the lifecycle
the runtime went through. Container runtimes stream real output (agent issue)."""

from __future__ import annotations

from sqlalchemy import select

from gpuyard.auth.caller import Caller
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.submission import load_workload
from gpuyard.store.base import as_utc
from gpuyard.store.workload_tables import WorkloadEventRow


def workload_log_lines(
    ctx: ServiceContext, caller: Caller, workload_id: str, tail: int
) -> list[str]:
    with ctx.db.read() as session:
        row = load_workload(session, caller, workload_id)
        events = session.scalars(
            select(WorkloadEventRow)
            .where(WorkloadEventRow.workload_id == row.id)
            .order_by(WorkloadEventRow.id.desc())
            .limit(tail)
        ).all()
    lines = [
        f"{as_utc(e.at).isoformat(timespec='seconds')} [{e.to_status}] {e.reason or ''}".rstrip()
        for e in reversed(events)
    ]
    return lines
