"""Workload logs. Simulated replicas have no process output: their log is the lifecycle
the runtime went through. Container runtimes stream real output (agent issue)."""

from __future__ import annotations

from gpuyard.auth.caller import Caller
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.submission import load_workload
from gpuyard.store import workloads as workload_store


def workload_log_lines(
    ctx: ServiceContext, caller: Caller, workload_id: str, tail: int
) -> list[str]:
    with ctx.db.read() as session:
        row = load_workload(session, caller, workload_id)
        events = workload_store.latest_transitions(session, row.id, tail)
    lines = [
        f"{at.isoformat(timespec='seconds')} [{to_status}] {reason or ''}".rstrip()
        for at, to_status, reason in reversed(events)
    ]
    return lines
