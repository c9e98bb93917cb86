"""The simulated runtime: servers are records and replicas run in virtual time.

Starting and stopping take effect at once; a workload with ``duration_s`` succeeds that
long after it started (the lifecycle loop does that). Used by ``--demo``, tests and
benchmarks.
"""

from __future__ import annotations

from gpuyard.runtimes.base import ReplicaSpec


class SimulatedRuntime:
    starts_instantly = True

    def start(self, spec: ReplicaSpec) -> str:
        return f"sim-{spec.workload_id[:12]}-{spec.replica}"

    def stop(self, handle: str, grace_period_s: float) -> None:
        return None
