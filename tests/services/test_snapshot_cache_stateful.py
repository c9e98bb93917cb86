"""The reservation state machine (test_invariants_stateful) with a second process: another
database connection on the same SQLite file submits, changes servers and runs its own
scheduling cycles with its own snapshot cache. After every step the database invariants
hold (no oversubscription, no leak) and each process's cached snapshot equals a full
reload."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
from factories.app import make_settings
from factories.snapshots import cached, comparable, fresh
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, precondition, rule
from test_invariants_stateful import GPU_SIZES, ReservationMachine

from gpuyard.domain.errors import GpuyardError
from gpuyard.domain.server_state import ServerStatus
from gpuyard.services.bootstrap import build_context
from gpuyard.services.fleet import servers as server_service
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import WorkloadChanges, update_workload
from gpuyard.services.workloads.submission import WorkloadSpec, create_workload


class TwoProcessMachine(ReservationMachine):
    def __init__(self) -> None:
        super().__init__()
        self.other = build_context(make_settings(self.tmp / "other", self.ctx.db.url, demo=False))
        self.other.clock = self.clock

    def teardown(self) -> None:
        self.other.db.dispose()
        super().teardown()

    @rule(cpu=st.sampled_from([0.5, 4]), gpu=GPU_SIZES, priority=st.integers(1, 5))
    def create_elsewhere(self, cpu: float, gpu: float, priority: int) -> None:
        spec = WorkloadSpec(image="busybox", cpu=cpu, ram_gb=1, gpu=gpu, priority=priority)
        self.workloads.append(create_workload(self.other, self.admin, spec).id)

    @rule()
    def schedule_elsewhere(self) -> None:
        run_scheduling_cycle(self.other)

    @precondition(lambda self: self.servers)
    @rule(data=st.data(), status=st.sampled_from([ServerStatus.ONLINE, ServerStatus.DRAINING]))
    def change_server_elsewhere(self, data: st.DataObject, status: ServerStatus) -> None:
        server_id = data.draw(st.sampled_from(self.servers))
        labels = {"rack": data.draw(st.sampled_from(["a", "b"]))}
        server_service.update_server(self.other, self.admin, server_id, status, labels)

    @precondition(lambda self: self.workloads)
    @rule(data=st.data(), priority=st.integers(1, 5), preemptible=st.booleans())
    def reprioritise_elsewhere(self, data: st.DataObject, priority: int, preemptible: bool) -> None:
        workload_id = data.draw(st.sampled_from(self.workloads))
        changes = WorkloadChanges(priority=priority, preemptible=preemptible)
        with contextlib.suppress(GpuyardError):  # finished workloads cannot change
            update_workload(self.other, self.admin, workload_id, changes)

    @invariant()
    def cached_snapshots_equal_a_full_reload(self) -> None:
        for ctx in (self.ctx, self.other):
            assert comparable(cached(ctx)) == comparable(fresh(ctx))


TwoProcessMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTwoProcessCacheInvariants = TwoProcessMachine.TestCase
