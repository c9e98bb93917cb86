"""Hypothesis drives random sequences of API-level operations (create, resize, stop,
delete, drain/undrain, server add/remove, scheduling cycles, time passing) against a real
SQLite database, and after every step checks what the database holds:

- no server allocates more than its capacity on any dimension, no GPU more than 1000 milli;
- each server's counters equal the sum of the reservations on it (nothing leaks);
- a whole-GPU replica's devices are distinct and used by no other replica;
- only workloads that hold resources have reservations, and every one of them has all
  of its replicas (gang) or at least one (non-gang);
- a team never holds more than its quota or its per-GPU-model limit (issue 21: the
  scheduler holds work back, submit refuses work past a limit on its own, and a resize
  past one is refused, alone or with the team's other work).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import hypothesis.strategies as st
from factories.app import ADMIN_EMAIL, make_context, make_settings
from factories.clock import ManualClock
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.errors import GpuyardError, InvalidInput
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.domain.workload_state import HOLDS_RESOURCES
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet import servers as server_service
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.servers import GpuSpec, SimulatedServerSpec
from gpuyard.services.identity.teams import HierarchySpec, QuotaSpec, TeamSpec, create_team
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import (
    WorkloadChanges,
    delete_workload,
    stop_workload,
    update_workload,
)
from gpuyard.services.workloads.lifecycle import advance_lifecycles
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.workload_tables import WorkloadRow

GPU_SIZES = st.sampled_from([0, 0, 0.05, 0.2, 0.25, 0.5, 0.95, 1, 2, 4, 8])
#: GB of GPU memory a share reserves (devices have 80 or 24 GB); asked only with a share.
GPU_MEMORY = st.sampled_from([None, None, 8, 20, 40])
HOLDING = {s.value for s in HOLDS_RESOURCES}
# Rules pick an existing server or workload by drawing a plain index, never by
# sampling the id lists: those lists follow what the database accepted (a refused delete
# keeps its id), so a strategy or precondition built from them could differ when
# hypothesis replays the same draws, which it reports as FlakyStrategyDefinition.
PICKS = st.integers(min_value=0)


def pick(ids: list[str], index: int) -> str | None:
    """The id at index (wrapped around) in ids, or None when ids is empty (the rule
    then does nothing, as a precondition would have kept it from running)."""
    return ids[index % len(ids)] if ids else None


#: The fields a refusal of what no server could ever hold names (scheduler/feasibility.py).
NEVER_FITS_FIELDS = {"node_selector", "gpu_model", "gpu", "cpu", "ram_gb", "storage_gb"}


#: The team whose limits the machine checks: quota and per-model limit (issue 21).
TEAM_CPU, TEAM_GPU, TEAM_H100_LIMIT = 8, 3, 2


def submit_unless_it_can_never_run(
    ctx: ServiceContext, caller: Caller, spec: WorkloadCreate
) -> str | None:
    """Submit ``spec``: its id, or None when no server of the fleet as it is could ever
    hold it, or it could never run within its team's limits (issue 21: refused at
    submit, nothing written; the invariants then hold of the rest)."""
    refused: InvalidInput | None = None
    try:
        return create_workload(ctx, caller, spec).id
    except InvalidInput as exc:
        refused = exc
    fields = {f.field for f in refused.errors}
    # gpu_memory_gb: a share asking more memory than any device of the fleet has (alone,
    # or beside the never-fits finding when the fleet has no such GPU at all).
    assert fields <= NEVER_FITS_FIELDS | {"gpu_memory_gb"}, refused
    assert (
        fields == {"gpu_memory_gb"}
        or "can never run" in str(refused)
        or "could never run within" in str(refused)
    ), refused
    return None


class ReservationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gy-stateful-"))
        self.ctx = make_context(make_settings(self.tmp / "data", None, demo=False))
        self.clock = ManualClock()
        self.ctx.clock = self.clock
        with self.ctx.db.read() as session:
            admin_id = session.scalar(select(UserRow.id).where(UserRow.email == ADMIN_EMAIL))
        self.admin = Caller(str(admin_id), ADMIN_EMAIL, Role.ADMIN)
        self.cluster = create_cluster(self.ctx, self.admin, "prop", ClusterKind.SIMULATED).id
        limits = HierarchySpec(gpu_model_limits={"H100": TEAM_H100_LIMIT})
        quota = QuotaSpec(cpu=TEAM_CPU, gpu=TEAM_GPU)
        team = TeamSpec(name="limited", quota=quota, hierarchy=limits)
        self.team = create_team(self.ctx, self.admin, team).id
        self.workloads: list[str] = []
        self.servers: list[str] = []
        self.server_seq = 0

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- servers -----------------------------------------------------------------------
    @rule(gpus=st.integers(0, 8), cpu=st.sampled_from([4, 16, 64]), ram=st.sampled_from([16, 256]))
    def add_server(self, gpus: int, cpu: int, ram: int) -> None:
        self.server_seq += 1
        spec = SimulatedServerSpec(
            name=f"s{self.server_seq}",
            cluster_id=self.cluster,
            cpu=cpu,
            ram_gb=ram,
            storage_gb=100,
            gpus=[GpuSpec("H100", 80) if i % 2 == 0 else GpuSpec("A100", 24) for i in range(gpus)],
        )
        self.servers.append(server_service.create_server(self.ctx, self.admin, spec).id)

    @rule(index=PICKS, status=st.sampled_from(list(ServerStatus)))
    def change_server_status(self, index: int, status: ServerStatus) -> None:
        server_id = pick(self.servers, index)
        if server_id is None:
            return
        try:
            server_service.update_server(self.ctx, self.admin, server_id, status, None)
        except GpuyardError:
            assert status is ServerStatus.OFFLINE

    @rule(index=PICKS)
    def remove_server(self, index: int) -> None:
        server_id = pick(self.servers, index)
        if server_id is None:
            return
        try:
            server_service.delete_server(self.ctx, self.admin, server_id)
            self.servers.remove(server_id)
        except GpuyardError:
            pass  # refused while it holds reservations: that is the rule

    # -- workloads ---------------------------------------------------------------------
    @rule(
        cpu=st.sampled_from([0.5, 1, 4, 16]),
        gpu=GPU_SIZES,
        priority=st.integers(1, 5),
        replicas=st.integers(1, 3),
        gang=st.booleans(),
        model=st.sampled_from([None, "H100", "A100"]),
        memory=GPU_MEMORY,
        in_team=st.booleans(),
    )
    def create(
        self,
        cpu: float,
        gpu: float,
        priority: int,
        replicas: int,
        gang: bool,
        model: str | None,
        memory: int | None,
        in_team: bool,
    ) -> None:
        spec = WorkloadCreate(
            image="busybox",
            cpu=cpu,
            ram_gb=1,
            gpu=gpu,
            priority=priority,
            replicas=replicas,
            gang=gang and replicas > 1,
            gpu_model=model if gpu else None,
            gpu_memory_gb=memory if 0 < gpu < 1 else None,
            duration_s=30,
            team_id=self.team if in_team else None,
        )
        submitted = submit_unless_it_can_never_run(self.ctx, self.admin, spec)
        if submitted is not None:
            self.workloads.append(submitted)

    @rule(index=PICKS, cpu=st.sampled_from([0.5, 2, 32]), gpu=GPU_SIZES)
    def resize(self, index: int, cpu: float, gpu: float) -> None:
        workload_id = pick(self.workloads, index)
        if workload_id is None:
            return
        # Finished workloads cannot change; gpu_model without gpu is refused.
        with contextlib.suppress(GpuyardError):
            update_workload(self.ctx, self.admin, workload_id, WorkloadChanges(cpu=cpu, gpu=gpu))

    @rule(index=PICKS, delete=st.booleans())
    def stop_or_delete(self, index: int, delete: bool) -> None:
        workload_id = pick(self.workloads, index)
        if workload_id is None:
            return
        try:
            if delete:
                delete_workload(self.ctx, self.admin, workload_id)
                self.workloads.remove(workload_id)
            else:
                stop_workload(self.ctx, self.admin, workload_id)
        except GpuyardError:
            pass  # already stopped

    @rule()
    def schedule(self) -> None:
        run_scheduling_cycle(self.ctx)

    @rule(seconds=st.sampled_from([1, 11, 31, 700]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        advance_lifecycles(self.ctx)

    # -- the invariants ----------------------------------------------------------------
    @invariant()
    def database_never_oversubscribes_and_never_leaks(self) -> None:
        with self.ctx.db.read() as session:
            servers = {s.id: s for s in session.scalars(select(ServerRow))}
            workloads = session.scalars(select(WorkloadRow)).all()
        team_cpu = team_gpu = team_h100 = 0
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        gpu_users: dict[tuple[str, int], int] = defaultdict(int)
        memory_users: dict[tuple[str, int], int] = defaultdict(int)
        whole: dict[tuple[str, int], int] = defaultdict(int)
        for w in workloads:
            if w.status not in HOLDING:
                assert not w.allocations, f"{w.status} workload holds reservations"
                continue
            assert w.allocations, f"{w.status} workload holds nothing"
            if w.gang:
                assert len(w.allocations) == w.replicas, "partial gang"
            for a in w.allocations:
                total = sums[a.server_id]
                for i, v in enumerate((a.cpu_milli, a.ram_mib, a.storage_mib, a.gpu_milli)):
                    total[i] += v
                assert sum(m for _, m in a.gpu_allocation) == a.gpu_milli
                indices = [i for i, _ in a.gpu_allocation]
                assert len(indices) == len(set(indices))
                assert a.gpu_memory_mib == w.gpu_memory_mib, "a replica holds other memory"
                if w.team_id == self.team:
                    team_cpu, team_gpu = team_cpu + a.cpu_milli, team_gpu + a.gpu_milli
                    models = {g.gpu_index: g.model for g in servers[a.server_id].gpus}
                    team_h100 += sum(m for i, m in a.gpu_allocation if models[i] == "H100")
                for index, milli in a.gpu_allocation:
                    gpu_users[(a.server_id, index)] += milli
                    memory_users[(a.server_id, index)] += a.gpu_memory_mib
                    if milli == 1000:
                        whole[(a.server_id, index)] += 1
        for server in servers.values():
            counters = [
                server.alloc_cpu_milli,
                server.alloc_ram_mib,
                server.alloc_storage_mib,
                server.alloc_gpu_milli,
            ]
            assert counters == sums[server.id], (
                f"{server.name}: counters {counters} vs {sums[server.id]}"
            )
            assert server.alloc_cpu_milli <= server.cpu_milli
            assert server.alloc_ram_mib <= server.ram_mib
            assert server.alloc_gpu_milli <= server.gpu_milli
            for gpu in server.gpus:
                assert gpu.allocated_milli == gpu_users[(server.id, gpu.gpu_index)]
                assert gpu.allocated_milli <= 1000
                assert gpu.allocated_memory_mib == memory_users[(server.id, gpu.gpu_index)]
                assert gpu.allocated_memory_mib <= gpu.memory_mib
                assert whole[(server.id, gpu.gpu_index)] <= 1
        assert team_cpu <= TEAM_CPU * 1000, f"team holds {team_cpu} milli-cpu"
        assert team_gpu <= TEAM_GPU * 1000, f"team holds {team_gpu} milli-GPU"
        assert team_h100 <= TEAM_H100_LIMIT * 1000, f"team holds {team_h100} of H100"


ReservationMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestReservationInvariants = ReservationMachine.TestCase
