"""A user's stop or resize that races another writer of the same workload, on PostgreSQL
(SQLite runs one writer at a time): the change is decided again on a fresh read, never a
500; a workload that changes under every try is a 409 and nothing of the change is written.

Found by tests/deploy/test_scale_out.py: with API and worker processes apart, a stop that
read a pending workload just before the worker placed it lost its compare-and-set and
answered 500. Here the race is made to happen every time: right after the change's
transaction has read the workload, another context (a second process) places it, or bumps
its version, and commits.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import admin_caller, make_context, make_settings
from sqlalchemy import event, select, text

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.errors import Conflict
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import (
    CHANGE_ATTEMPTS,
    WorkloadChanges,
    stop_workload,
    update_workload,
)
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import WorkloadEventRow, WorkloadRow

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def contexts(postgres_url: str, tmp_path: Path) -> Iterator[tuple[ServiceContext, ServiceContext]]:
    """The API's process and a worker's, on one database (no leases: the worker's
    scheduler places whenever it is asked)."""
    settings = make_settings(tmp_path / "data", postgres_url, scheduler_lease=False)
    api, worker = make_context(settings), make_context(settings)
    yield api, worker
    api.db.dispose()
    worker.db.dispose()


def after_each_read_of_the_workload(
    ctx: ServiceContext, times: int, act: Callable[[], None]
) -> list[int]:
    """Call ``act`` right after ``ctx`` reads a workload row, the first ``times`` times;
    the list grows by one per call."""
    calls: list[int] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        reads_workload = statement.lstrip().upper().startswith("SELECT") and (
            "FROM workloads" in statement
        )
        if reads_workload and len(calls) < times:
            calls.append(1)
            act()

    event.listen(ctx.db.engine, "after_cursor_execute", listener)
    return calls


def events_of(ctx: ServiceContext, workload_id: str) -> list[tuple[str | None, str]]:
    with ctx.db.read() as session:
        rows = session.scalars(
            select(WorkloadEventRow)
            .where(WorkloadEventRow.workload_id == workload_id)
            .order_by(WorkloadEventRow.id)
        )
        return [(e.from_status, e.to_status) for e in rows]


def test_a_stop_that_loses_to_the_scheduler_is_decided_again(
    contexts: tuple[ServiceContext, ServiceContext],
) -> None:
    api, worker = contexts
    caller = admin_caller(api)
    workload = create_workload(api, caller, WorkloadCreate(image="busybox", cpu=2, ram_gb=4))
    calls = after_each_read_of_the_workload(api, 1, lambda: run_scheduling_cycle(worker))

    stop_workload(api, caller, workload.id)  # read pending; the worker placed it meanwhile

    assert calls == [1]
    # The worker's placement (and start) stands, and the stop, read again, came after it
    # and released what it held: one chain of transitions.
    events = events_of(api, workload.id)
    assert events[:2] == [(None, "pending"), ("pending", "scheduled")]
    assert events[-1] == ("running", "stopped")
    assert all(after[0] == before[1] for before, after in itertools.pairwise(events))
    with api.db.read() as session:
        row = session.get(WorkloadRow, workload.id)
        assert row is not None
        assert row.status == "stopped"
        assert row.allocations == []
        held = session.scalars(select(ServerRow.alloc_cpu_milli)).all()
        assert set(held) == {0}


def test_a_resize_that_loses_to_the_scheduler_is_decided_again(
    contexts: tuple[ServiceContext, ServiceContext],
) -> None:
    api, worker = contexts
    caller = admin_caller(api)
    workload = create_workload(api, caller, WorkloadCreate(image="busybox", cpu=2, ram_gb=4))
    calls = after_each_read_of_the_workload(api, 1, lambda: run_scheduling_cycle(worker))

    update_workload(api, caller, workload.id, WorkloadChanges(cpu=3, ram_gb=6))

    assert calls == [1]
    with api.db.read() as session:
        row = session.get(WorkloadRow, workload.id)
        assert row is not None
        # Placed by the worker, then resized where it stands (the simulated runtime has no
        # containers to recreate): the reservation moved with the request.
        assert (row.cpu_milli, row.ram_mib) == (3000, 6 * 1024)
        assert [(a.cpu_milli, a.ram_mib) for a in row.allocations] == [(3000, 6 * 1024)]
        held = sum(session.scalars(select(ServerRow.alloc_cpu_milli)).all())
        assert held == 3000


def test_a_workload_that_changes_under_every_try_is_a_conflict_and_nothing_is_written(
    contexts: tuple[ServiceContext, ServiceContext],
) -> None:
    api, worker = contexts
    caller = admin_caller(api)
    workload = create_workload(api, caller, WorkloadCreate(image="busybox", cpu=1, ram_gb=1))

    def another_writer() -> None:
        with worker.db.write() as session:
            session.execute(
                text("UPDATE workloads SET version = version + 1 WHERE id = :id"),
                {"id": workload.id},
            )

    calls = after_each_read_of_the_workload(api, 100, another_writer)
    with pytest.raises(Conflict, match="kept changing"):
        stop_workload(api, caller, workload.id)

    assert len(calls) == CHANGE_ATTEMPTS
    assert events_of(api, workload.id) == [(None, "pending")]
    with api.db.read() as session:
        row = session.get(WorkloadRow, workload.id)
        assert row is not None
        assert row.status == "pending"
        stops = session.execute(
            text("SELECT count(*) FROM audit_events WHERE action = 'workload.stop'")
        ).scalar_one()
        assert stops == 0
