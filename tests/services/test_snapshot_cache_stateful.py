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
from hypothesis.stateful import invariant, rule
from test_invariants_stateful import (
    GPU_SIZES,
    PICKS,
    ReservationMachine,
    pick,
    submit_unless_it_can_never_run,
)

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.errors import GpuyardError
from gpuyard.domain.server_state import ServerStatus
from gpuyard.services.bootstrap import build_context
from gpuyard.services.fleet import servers as server_service
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import WorkloadChanges, update_workload


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
        spec = WorkloadCreate(image="busybox", cpu=cpu, ram_gb=1, gpu=gpu, priority=priority)
        submitted = submit_unless_it_can_never_run(self.other, self.admin, spec)
        if submitted is not None:
            self.workloads.append(submitted)

    @rule()
    def schedule_elsewhere(self) -> None:
        run_scheduling_cycle(self.other)

    @rule(
        index=PICKS,
        status=st.sampled_from([ServerStatus.ONLINE, ServerStatus.DRAINING]),
        rack=st.sampled_from(["a", "b"]),
    )
    def change_server_elsewhere(self, index: int, status: ServerStatus, rack: str) -> None:
        # Every draw is a rule argument, so the draws do not depend on whether a server
        # exists (see PICKS).
        server_id = pick(self.servers, index)
        if server_id is None:
            return
        labels = {"rack": rack}
        server_service.update_server(self.other, self.admin, server_id, status, labels)

    @rule(index=PICKS, priority=st.integers(1, 5), preemptible=st.booleans())
    def reprioritise_elsewhere(self, index: int, priority: int, preemptible: bool) -> None:
        workload_id = pick(self.workloads, index)
        if workload_id is None:
            return
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
