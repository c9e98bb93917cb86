"""The one workload status path: checked against the transition table, written by a
compare-and-set on the version the caller read, recorded as an event; a stale write
raises a StaleDataError (as an ORM flush's did) and writes nothing. On both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories.app import authed_client
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.errors import InvalidTransition
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.batches import write_batch_or_each
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.transitions import StaleWorkload, transition_workload
from gpuyard.store.workload_tables import WorkloadEventRow, WorkloadRow


def _submit(ctx: ServiceContext) -> str:
    with authed_client(ctx) as api:
        response = api.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _row(ctx: ServiceContext, workload_id: str) -> tuple[str, int, int]:
    """Status, version and number of events."""
    with ctx.db.read() as session:
        row = session.get(WorkloadRow, workload_id)
        assert row is not None
        events = session.scalars(
            select(WorkloadEventRow.id).where(WorkloadEventRow.workload_id == workload_id)
        ).all()
        return row.status, row.version, len(events)


def test_a_transition_writes_status_version_and_event(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    workload_id = _submit(ctx)
    _, version, events = _row(ctx, workload_id)
    now = ctx.now() + timedelta(seconds=1)
    with ctx.db.write() as session:
        row = session.get(WorkloadRow, workload_id)
        assert row is not None
        transition_workload(session, row, WorkloadStatus.STOPPED, "stopped by test", now)
        # The loaded object matches the row: a later ORM change flushes on the new version.
        assert (row.status, row.version, row.reason) == ("stopped", version + 1, "stopped by test")
        row.priority = 5
    status, new_version, new_events = _row(ctx, workload_id)
    assert (status, new_version, new_events) == ("stopped", version + 2, events + 1)
    with ctx.db.read() as session:
        row = session.get(WorkloadRow, workload_id)
        assert row is not None
        assert row.finished_at is not None
        assert row.priority == 5


def _transition(
    ctx: ServiceContext, workload_id: str, target: WorkloadStatus, *, raced: bool = False
) -> None:
    with ctx.db.write() as session:
        row = session.get(WorkloadRow, workload_id)
        assert row is not None
        if raced:  # another writer moves the row on after this one read it
            session.execute(
                update(WorkloadRow.__table__)  # type: ignore[arg-type]
                .where(WorkloadRow.id == workload_id)
                .values(version=WorkloadRow.version + 1)
            )
        transition_workload(session, row, target, "by the test", ctx.now())


def test_a_stale_transition_raises_and_writes_nothing(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    workload_id = _submit(ctx)
    before = _row(ctx, workload_id)
    with pytest.raises(StaleDataError) as raised:
        _transition(ctx, workload_id, WorkloadStatus.STOPPED, raced=True)
    assert isinstance(raised.value, StaleWorkload)
    assert _row(ctx, workload_id) == before


def test_a_transition_outside_the_table_is_refused(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    workload_id = _submit(ctx)
    before = _row(ctx, workload_id)
    with pytest.raises(InvalidTransition):
        _transition(ctx, workload_id, WorkloadStatus.SUCCEEDED)
    assert _row(ctx, workload_id) == before


def test_a_batch_with_one_bad_item_is_written_one_by_one(clock_ctx: ServiceContext) -> None:
    """The helper of docs/concurrency.md #10: the batch rolls back whole, then each item
    goes alone, so only the bad one is left out."""
    ctx = clock_ctx
    ids = [_submit(ctx) for _ in range(3)]
    bad = ids[1]
    refused: list[str] = []
    with ctx.db.write() as session:

        def write_one(workload_id: str) -> str:
            session.execute(
                update(WorkloadRow.__table__)  # type: ignore[arg-type]
                .where(WorkloadRow.id == workload_id)
                .values(priority=5)
            )
            if workload_id == bad:  # after its write: the savepoint must undo it
                raise ValueError("its own data")
            return workload_id

        written = write_batch_or_each(
            session,
            ids,
            lambda batch: [write_one(workload_id) for workload_id in batch],
            write_one,
            lambda exc: isinstance(exc, ValueError),
            lambda workload_id, exc: refused.append(workload_id),
            "test",
        )
    assert written == [ids[0], ids[2]]
    assert refused == [bad]
    with ctx.db.read() as session:
        query = select(WorkloadRow.id, WorkloadRow.priority).where(WorkloadRow.id.in_(ids))
        priorities = {workload_id: priority for workload_id, priority in session.execute(query)}
    assert priorities == {ids[0]: 5, bad: 3, ids[2]: 5}
