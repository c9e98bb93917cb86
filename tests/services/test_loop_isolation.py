"""One bad item never stops a loop (services/loops/item_failures.py).

Each test writes a poisoned row straight into the database, as an older version or a bug
could have (the API refuses such input now), and shows that the loop fails that workload
with a storable reason, logs it once however many ticks run, and goes on with the others.
The lifecycle and the scheduler here; the docker loops in test_loop_isolation_docker.py.
On both databases.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from factories.app import authed_client, settle
from factories.clock import ManualClock
from factories.loop_failures import FailureLog, record_failures, status_and_reason
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from gpuyard.services.context import ServiceContext
from gpuyard.services.loops import runner as loops
from gpuyard.services.loops.runner import Loop, LoopRunner
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.lifecycle import advance_lifecycles
from gpuyard.store.fleet_tables import ServerGpuRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

_STAYS_FAILED = "failed so that the other workloads go on"


def _submit(api: TestClient, **body: Any) -> str:
    response = api.post("/api/v1/workloads", json={"image": "busybox", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _set(ctx: ServiceContext, workload_id: str, **values: Any) -> None:
    with ctx.db.write() as session:
        session.execute(update(WorkloadRow).where(WorkloadRow.id == workload_id).values(**values))


def _holds_allocations(ctx: ServiceContext, workload_id: str) -> bool:
    with ctx.db.read() as session:
        query = select(AllocationRow.id).where(AllocationRow.workload_id == workload_id)
        return session.scalar(query) is not None


def _clock(ctx: ServiceContext) -> ManualClock:
    assert isinstance(ctx.clock, ManualClock)
    return ctx.clock


# -- lifecycle -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "duration", [pytest.param(1e300, id="1e300"), pytest.param(math.inf, id="inf")]
)
def test_lifecycle_fails_a_duration_no_clock_reaches_and_finishes_the_others(
    clock_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, duration: float
) -> None:
    """Before isolation, one such row failed every tick: nothing finished anywhere."""
    ctx = clock_ctx
    failures = record_failures(monkeypatch)
    with authed_client(ctx) as api:
        ids = [_submit(api, cpu=1, ram_gb=1, duration_s=5) for _ in range(3)]
    settle(ctx)
    bad = ids[1]
    _set(ctx, bad, duration_s=duration)
    _clock(ctx).advance(6)
    assert advance_lifecycles(ctx) == 3  # two finished, one failed
    for _ in range(3):
        _clock(ctx).advance(1)
        assert advance_lifecycles(ctx) == 0
    assert [status_and_reason(ctx, w)[0] for w in ids] == ["succeeded", "failed", "succeeded"]
    assert status_and_reason(ctx, bad)[1] == (
        f"its duration_s is out of range, so it could never finish (OverflowError); {_STAYS_FAILED}"
    )
    assert not _holds_allocations(ctx, bad)  # its reservation went back
    assert len(failures.failures("lifecycle", bad)) == 1


def test_lifecycle_logs_once_a_workload_it_can_neither_finish_nor_fail(
    clock_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its GPU counter was corrupted, so the CHECK guard refuses its release: to finish
    and to fail alike. It stays as it is, retried quietly; the others finish."""
    ctx = clock_ctx
    failures = record_failures(monkeypatch)
    with authed_client(ctx) as api:
        ids = [_submit(api, gpu=1, cpu=1, ram_gb=1, duration_s=5) for _ in range(3)]
    settle(ctx)
    bad = ids[0]
    with ctx.db.write() as session:
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
    _clock(ctx).advance(6)
    assert advance_lifecycles(ctx) == 2
    for _ in range(3):
        _clock(ctx).advance(1)
        assert advance_lifecycles(ctx) == 0
    assert [status_and_reason(ctx, w)[0] for w in ids] == ["running", "succeeded", "succeeded"]
    assert _holds_allocations(ctx, bad)
    assert len(failures.failures("lifecycle", bad)) == 1
    assert len(failures.failures("lifecycle", f"{bad} (failing it)")) == 1


# -- scheduler -----------------------------------------------------------------------------


def _make_unreadable(ctx: ServiceContext, workload_id: str) -> None:
    """A column the driver cannot hand over: bytes that are not UTF-8 (SQLite), a
    timestamp past any Python datetime (PostgreSQL)."""
    if ctx.db.is_sqlite:
        statement = "UPDATE workloads SET gpu_model = CAST(X'EDA080' AS TEXT) WHERE id = :id"
    else:
        statement = "UPDATE workloads SET pending_since = 'infinity' WHERE id = :id"
    with ctx.db.write() as session:
        session.execute(text(statement), {"id": workload_id})


def test_scheduler_fails_pending_rows_it_cannot_read_and_places_the_others(
    clock_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = clock_ctx
    failures = record_failures(monkeypatch)
    with authed_client(ctx) as api:
        ids = [_submit(api, cpu=1, ram_gb=1) for _ in range(4)]
    unreadable, unconvertible = ids[0], ids[1]
    _make_unreadable(ctx, unreadable)
    _set(ctx, unconvertible, node_selector=["zone"])  # a list where an object belongs
    settle(ctx)
    for _ in range(3):
        run_scheduling_cycle(ctx)
    assert [status_and_reason(ctx, w)[0] for w in ids] == ["failed", "failed"] + ["running"] * 2
    for workload_id in (unreadable, unconvertible):
        reason = status_and_reason(ctx, workload_id)[1]
        assert reason is not None
        assert reason.startswith("the scheduler could not read its row (")
        assert reason.endswith(_STAYS_FAILED)
        assert len(failures.failures("scheduler", workload_id)) == 1


def test_scheduler_keeps_running_work_it_cannot_read_and_logs_it_once(
    clock_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workload that holds resources is left running, out of the scheduler's view: its
    row says nothing about whether its container is fine."""
    ctx = clock_ctx
    failures = record_failures(monkeypatch)
    with authed_client(ctx) as api:
        running = _submit(api, cpu=1, ram_gb=1)
        settle(ctx)
        with ctx.db.write() as session:  # a GPU allocation without its share
            session.execute(
                update(AllocationRow)
                .where(AllocationRow.workload_id == running)
                .values(gpu_allocation=[[0]])
            )
        later = [_submit(api, cpu=1, ram_gb=1) for _ in range(2)]
    settle(ctx)
    ctx.snapshot_cache.invalidate()  # a full reload finds it again...
    for _ in range(3):
        run_scheduling_cycle(ctx)
    assert [status_and_reason(ctx, w)[0] for w in [running, *later]] == ["running"] * 3
    assert len(failures.failures("scheduler", running)) == 1  # ...and says so once


@pytest.mark.parametrize(
    "clock_ctx",
    [pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres])],
    indirect=True,
)
def test_a_reason_the_database_refuses_fails_only_its_workload(
    clock_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node selector stored with a NUL (PostgreSQL's json type keeps "\\u0000") makes a
    pending reason that quotes it, which PostgreSQL's text refuses. Before isolation, every
    cycle failed writing the reasons of all pending workloads at once, across restarts.
    (SQLite stores NUL in text, so nothing there refuses such a reason.)"""
    ctx = clock_ctx
    failures = record_failures(monkeypatch)
    with authed_client(ctx) as api:
        poisoned = _submit(api, cpu=1, ram_gb=1, node_selector={"zone": "demo"})
        no_such_gpu = _submit(api, cpu=1, ram_gb=1, gpu=1, gpu_model="H100")
        fits = _submit(api, cpu=1, ram_gb=1)
    with ctx.db.write() as session:
        # A model no server has (submit refuses one: as if the fleet changed since).
        session.execute(
            text("UPDATE workloads SET gpu_model = 'Z999' WHERE id = :id"), {"id": no_such_gpu}
        )
        session.execute(
            text("UPDATE workloads SET node_selector = CAST(:v AS json) WHERE id = :id"),
            {"v": '{"zone": "\\u0000"}', "id": poisoned},
        )
    settle(ctx)
    for _ in range(3):
        run_scheduling_cycle(ctx)
    assert status_and_reason(ctx, fits)[0] == "running"
    status, reason = status_and_reason(ctx, no_such_gpu)
    assert status == "pending"
    assert reason is not None
    assert "servers fit" in reason  # its reason was recorded all the same
    assert status_and_reason(ctx, poisoned) == (
        "failed",
        f"its pending reason could not be stored (DataError); {_STAYS_FAILED}",
    )
    assert len(failures.failures("scheduler", poisoned)) == 1


# -- a whole tick --------------------------------------------------------------------------


def test_a_tick_that_keeps_failing_is_logged_once_until_it_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What still fails a whole tick (the database down, say) is logged when it starts
    and when it ends, not once a second in between."""
    lines = FailureLog()
    monkeypatch.setattr(loops, "log", lines)
    ticks = 0
    enough = threading.Event()

    def tick(_fence: object) -> None:
        nonlocal ticks
        ticks += 1
        if ticks >= 8:
            enough.set()
        elif ticks <= 5:
            raise OverflowError("date value out of range")

    runner = LoopRunner([Loop("poisoned", interval_s=0.001, tick=tick, jitter=0.0, lease=None)])
    runner.start()
    assert enough.wait(10)
    runner.stop()
    events = [event for event, _ in lines.lines]
    assert events.count("loop_tick_failed") == 1
    assert [values for event, values in lines.lines if event == "loop_tick_recovered"] == [
        {"loop": "poisoned", "failed_ticks": 5}
    ]
