"""The lifecycle tick changes each workload in its own transaction: one that cannot be
finished (here its GPU counter was corrupted, so the CHECK guard refuses the release)
neither blocks the others nor is released twice, and a workload another process already
finished is left alone. On both databases."""

from __future__ import annotations

from typing import Any

from factories.app import authed_client, make_context, settle
from factories.clock import ManualClock
from factories.statements import updates_sent
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.lifecycle import _change, _change_batch, _Due, advance_lifecycles
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadEventRow, WorkloadRow


def _submit(api: TestClient, **body: Any) -> str:
    response = api.post("/api/v1/workloads", json={"image": "busybox", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _status(ctx: ServiceContext, workload_id: str) -> str:
    with ctx.db.read() as session:
        row = session.get(WorkloadRow, workload_id)
        assert row is not None
        return row.status


def test_one_unfinishable_workload_does_not_block_the_others(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    with authed_client(ctx) as api:
        ids = [_submit(api, gpu=1, cpu=1, ram_gb=1, duration_s=5) for _ in range(3)]
    settle(ctx)
    assert [_status(ctx, w) for w in ids] == ["running"] * 3
    bad = ids[1]
    with ctx.db.write() as session:  # its device's counter says nothing is reserved
        server_id, allocation = session.execute(
            select(AllocationRow.server_id, AllocationRow.gpu_allocation).where(
                AllocationRow.workload_id == bad
            )
        ).one()
        session.execute(
            update(ServerGpuRow)
            .where(ServerGpuRow.server_id == server_id)
            .where(ServerGpuRow.gpu_index == allocation[0][0])
            .values(allocated_milli=0)
        )
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(6)
    assert advance_lifecycles(ctx) == 2
    assert [_status(ctx, w) for w in ids] == ["succeeded", "running", "succeeded"]
    with ctx.db.read() as session:  # nothing of the bad one was released or rolled half
        assert session.scalar(select(AllocationRow.id).where(AllocationRow.workload_id == bad))
    assert advance_lifecycles(ctx) == 0  # and it is retried, not forgotten


def test_a_workload_finished_elsewhere_is_left_alone(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    with authed_client(ctx) as api:
        workload_id = _submit(api, cpu=1, ram_gb=1, duration_s=5)
    settle(ctx)
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(6)
    # Another process on the same database. On PostgreSQL only the scheduler lease's
    # holder ticks; this one ignores the lease, as if it had lapsed, so that the version
    # check is what must keep the two apart.
    other = make_context(ctx.settings.model_copy(update={"scheduler_lease": False}))
    other.clock = ctx.clock
    try:
        assert advance_lifecycles(other) == 1
    finally:
        other.db.dispose()
    assert advance_lifecycles(ctx) == 0
    assert _status(ctx, workload_id) == "succeeded"


def test_a_tick_changes_its_workloads_together(clock_ctx: ServiceContext) -> None:
    """Finished and requeued in one statement per table, with the same fields and events
    as one by one."""
    ctx = clock_ctx
    with authed_client(ctx) as api:
        ids = [_submit(api, gpu=0.5, cpu=1, ram_gb=1, duration_s=5) for _ in range(4)]
        ids += [_submit(api, cpu=2, ram_gb=2, duration_s=5) for _ in range(3)]
    settle(ctx)
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(6)
    with updates_sent(ctx.db.writer) as sent:
        assert advance_lifecycles(ctx) == len(ids)
    changes = sorted(update for update in sent if update[0] != "leases")  # its renewal
    assert changes == [("server_gpus", True), ("servers", True), ("workloads", True)]
    with ctx.db.read() as session:
        rows = session.scalars(select(WorkloadRow).where(WorkloadRow.id.in_(ids))).all()
        assert {(r.status, r.reason) for r in rows} == {
            ("succeeded", "finished after 5s (simulated)")
        }
        assert all(r.finished_at is not None for r in rows)
        assert not session.scalars(select(AllocationRow)).all()
        assert not session.scalars(select(ServerRow).where(ServerRow.alloc_cpu_milli != 0)).all()
        assert not session.scalars(
            select(ServerGpuRow).where(ServerGpuRow.allocated_milli != 0)
        ).all()
        finished = session.scalars(
            select(WorkloadEventRow.workload_id).where(WorkloadEventRow.to_status == "succeeded")
        ).all()
    assert sorted(finished) == sorted(ids)


def test_a_batch_partly_finished_elsewhere_goes_together_without_those(
    clock_ctx: ServiceContext,
) -> None:
    """The tick read four due workloads; another process finished one of them before the
    tick wrote. The other three still change together, in a second attempt."""
    ctx = clock_ctx
    with authed_client(ctx) as api:
        ids = [_submit(api, cpu=1, ram_gb=1, duration_s=5) for _ in range(4)]
    settle(ctx)
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(6)
    with ctx.db.read() as session:
        versions = dict(
            session.execute(
                select(WorkloadRow.id, WorkloadRow.version).where(WorkloadRow.id.in_(ids))
            ).all()
        )
    read_by_the_tick = [_Due(w, versions[w], WorkloadStatus.RUNNING, 5) for w in ids]
    with ctx.db.write() as session:  # what another process's tick did meanwhile
        assert _change(session, read_by_the_tick[0], ctx.now()) == 1
    with updates_sent(ctx.db.writer) as sent:
        assert _change_batch(ctx, read_by_the_tick, ctx.now()) == 3
    assert [table for table, many in sent if table == "workloads" and many] == ["workloads"] * 2
    assert [_status(ctx, w) for w in ids] == ["succeeded"] * 4
    with ctx.db.read() as session:
        assert not session.scalars(select(AllocationRow)).all()
        assert not session.scalars(select(ServerRow).where(ServerRow.alloc_cpu_milli != 0)).all()
