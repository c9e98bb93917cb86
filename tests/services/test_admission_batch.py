"""A batch of admissions is applied together, one statement per table, when every decision
still holds; when one went stale (another decider took its room or changed its workload),
nothing of it is written and the others are applied one by one. On both databases."""

from __future__ import annotations

from factories.app import admin_caller
from factories.statements import updates_sent
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.admissions import apply_admission_batch, went_stale
from gpuyard.services.scheduling.cycle import plan_cycle
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow
from gpuyard.store.reservations import ReservationConflict
from gpuyard.store.workload_tables import AllocationRow, WorkloadEventRow, WorkloadRow

SPECS = [
    WorkloadCreate(image="busybox", name="whole", cpu=2, ram_gb=4, gpu=1),
    WorkloadCreate(image="busybox", name="half-a", cpu=1, ram_gb=2, gpu=0.5),
    WorkloadCreate(image="busybox", name="half-b", cpu=1, ram_gb=2, gpu=0.5),
    WorkloadCreate(image="busybox", name="cpu", cpu=4, ram_gb=8),
    WorkloadCreate(image="busybox", name="gang", cpu=1, ram_gb=1, gpu=1, replicas=2, gang=True),
]


def _submit_all(ctx: ServiceContext) -> dict[str, str]:
    caller = admin_caller(ctx)
    return {spec.name or "": create_workload(ctx, caller, spec).id for spec in SPECS}


def _assert_counters_match_allocations(ctx: ServiceContext) -> None:
    with ctx.db.read() as session:
        for server in session.scalars(select(ServerRow)):
            allocations = session.scalars(
                select(AllocationRow).where(AllocationRow.server_id == server.id)
            ).all()
            assert server.alloc_cpu_milli == sum(a.cpu_milli for a in allocations)
            assert server.alloc_gpu_milli == sum(a.gpu_milli for a in allocations)
            for gpu in session.scalars(
                select(ServerGpuRow).where(ServerGpuRow.server_id == server.id)
            ):
                used = sum(
                    m for a in allocations for i, m in a.gpu_allocation if i == gpu.gpu_index
                )
                assert gpu.allocated_milli == used <= 1000


def _statuses(ctx: ServiceContext, ids: dict[str, str]) -> dict[str, str]:
    with ctx.db.read() as session:
        rows = session.execute(select(WorkloadRow.id, WorkloadRow.status)).all()
    by_id = dict(rows)
    return {name: by_id[wid] for name, wid in ids.items()}


def test_a_batch_that_holds_goes_out_one_statement_per_table(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    ids = _submit_all(ctx)
    state, result = plan_cycle(ctx)
    assert {a.workload_id for a in result.admitted} == set(ids.values())
    with updates_sent(ctx.db.writer) as sent:
        outcome = apply_admission_batch(ctx, list(result.admitted), state)
    assert outcome.applied == len(SPECS)
    assert outcome.stale_admissions == []
    assert set(_statuses(ctx, ids).values()) == {"running"}
    # Every server reservation in one executemany, every device's in another, and the
    # workloads' status changes in a third.
    assert sorted(sent) == [("server_gpus", True), ("servers", True), ("workloads", True)]
    with ctx.db.read() as session:
        events = session.scalar(select(func.count()).select_from(WorkloadEventRow))
        replicas = session.scalar(select(func.count()).select_from(AllocationRow))
    assert events == 4 * len(SPECS)  # submitted, scheduled, starting, running
    assert replicas == len(SPECS) + 1  # the gang has two
    _assert_counters_match_allocations(ctx)


def test_a_workload_changed_since_the_snapshot_rolls_back_alone(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    ids = _submit_all(ctx)
    state, result = plan_cycle(ctx)
    with ctx.db.write() as session:  # someone else moved it on (a new priority, say)
        session.execute(
            update(WorkloadRow)
            .where(WorkloadRow.id == ids["half-a"])
            .values(version=WorkloadRow.version + 1)
        )
    outcome = apply_admission_batch(ctx, list(result.admitted), state)
    assert [a.workload_id for a in outcome.stale_admissions] == [ids["half-a"]]
    assert outcome.applied == len(SPECS) - 1
    statuses = _statuses(ctx, ids)
    assert statuses.pop("half-a") == "pending"
    assert set(statuses.values()) == {"running"}
    with ctx.db.read() as session:  # nothing of the stale one was written
        assert not session.scalars(
            select(AllocationRow).where(AllocationRow.workload_id == ids["half-a"])
        ).all()
    _assert_counters_match_allocations(ctx)


def test_a_server_filled_since_the_snapshot_refuses_only_what_no_longer_fits(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    ids = _submit_all(ctx)
    state, result = plan_cycle(ctx)
    whole = next(a for a in result.admitted if a.workload_id == ids["whole"])
    (assignment,) = whole.assignments
    ((gpu_index, _),) = assignment.gpu_allocation
    with ctx.db.write() as session:  # another decider took the very GPU it was given
        session.execute(
            update(ServerGpuRow)
            .where(ServerGpuRow.server_id == assignment.server_id)
            .where(ServerGpuRow.gpu_index == gpu_index)
            .values(allocated_milli=1000)
        )
    outcome = apply_admission_batch(ctx, list(result.admitted), state)
    assert [a.workload_id for a in outcome.stale_admissions] == [ids["whole"]]
    statuses = _statuses(ctx, ids)
    assert statuses.pop("whole") == "pending"
    assert set(statuses.values()) == {"running"}
    with ctx.db.read() as session:
        taken = session.scalar(
            select(ServerGpuRow.allocated_milli)
            .where(ServerGpuRow.server_id == assignment.server_id)
            .where(ServerGpuRow.gpu_index == gpu_index)
        )
        server = session.get(ServerRow, assignment.server_id)
        assert server is not None
        mine = session.scalars(
            select(AllocationRow).where(AllocationRow.server_id == assignment.server_id)
        ).all()
    assert taken == 1000  # the outside reservation, untouched, and nothing added to it
    assert server.alloc_cpu_milli == sum(a.cpu_milli for a in mine)


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_what_counts_as_a_stale_decision() -> None:
    """Lost races are retried as stale decisions; any other database error is real and
    stops the cycle (it is not silently counted as a conflict)."""
    deadlock = OperationalError("UPDATE servers", {}, _PgError("40P01"))
    serialization = OperationalError("UPDATE servers", {}, _PgError("40001"))
    lost_connection = OperationalError("UPDATE servers", {}, _PgError("08006"))
    check_guard = IntegrityError("UPDATE server_gpus", {}, _PgError("23514"))
    assert went_stale(deadlock)
    assert went_stale(serialization)
    assert went_stale(check_guard)
    assert went_stale(ReservationConflict("server s1 has no room"))
    assert not went_stale(lost_connection)
