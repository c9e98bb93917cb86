"""Group commit of workload submissions: many threads, one transaction each batch, every
submission answered with its own outcome, nothing half-written."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.errors import GpuyardError, InvalidInput
from gpuyard.domain.resources import Resources
from gpuyard.domain.workload_records import Workload
from gpuyard.services.context import ServiceContext
from gpuyard.services.group_commit import GroupCommit
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit, verify_audit_log
from gpuyard.services.workloads.submission import (
    create_workload,
    create_workload_async,
)
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.workload_tables import WorkloadEventRow, WorkloadRow


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", None))
    yield context
    context.db.dispose()


def _count(ctx: ServiceContext, table: type[WorkloadRow] | type[WorkloadEventRow]) -> int:
    with ctx.db.read() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _run_together(count: int, target: object) -> list[object]:
    """Call ``target(i)`` from ``count`` threads; outcomes (result or exception) by i."""
    outcomes: list[object] = [None] * count

    def call(i: int) -> None:
        try:
            outcomes[i] = target(i)  # type: ignore[operator]
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_submissions_share_transactions_and_each_gets_its_own_row(
    ctx: ServiceContext,
) -> None:
    caller = admin_caller(ctx)
    before = _count(ctx, WorkloadRow)
    outcomes = _run_together(
        40, lambda i: create_workload(ctx, caller, WorkloadCreate(image="busybox", name=f"w{i}"))
    )
    rows = [o for o in outcomes if isinstance(o, Workload)]
    assert len(rows) == 40
    assert sorted(r.name for r in rows) == sorted(f"w{i}" for i in range(40))
    assert len({r.id for r in rows}) == 40
    assert _count(ctx, WorkloadRow) == before + 40
    with ctx.db.read() as session:
        first_events = session.scalar(
            select(func.count())
            .select_from(WorkloadEventRow)
            .where(WorkloadEventRow.reason == "submitted")
        )
    assert first_events == 40
    report = verify_audit_log(ctx.db)
    assert report.intact, report.problem


def test_an_invalid_submission_fails_alone_in_its_batch(ctx: ServiceContext) -> None:
    caller = admin_caller(ctx)

    def submit(i: int) -> Workload:
        cluster = "no-such-cluster" if i == 3 else None
        return create_workload(
            ctx, caller, WorkloadCreate(image="busybox", name=f"v{i}", cluster_id=cluster)
        )

    outcomes = _run_together(8, submit)
    assert isinstance(outcomes[3], InvalidInput)
    assert outcomes[3].errors[0].field == "cluster_id"
    assert all(isinstance(o, Workload) for i, o in enumerate(outcomes) if i != 3)
    with ctx.db.read() as session:
        names = set(session.scalars(select(WorkloadRow.name)))
    assert "v3" not in names
    assert {f"v{i}" for i in range(8) if i != 3} <= names


class Gate:
    """Wraps a batch writer so the first batch blocks (holding the leader's place) until
    released; records every batch's size."""

    def __init__(self, group: GroupCommit[str, str]) -> None:
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self._write = group.write_batch
        group.write_batch = self

    def __call__(self, session: Session, items: Sequence[str]) -> list[str | GpuyardError]:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(10)
        self.sizes.append(len(items))
        return self._write(session, items)


def _start_blocked_leader(group: GroupCommit[str, str]) -> tuple[Gate, threading.Thread]:
    gate = Gate(group)
    leader = threading.Thread(target=group.submit, args=("first",))
    leader.start()
    assert gate.entered.wait(10)
    return gate, leader


def _submit_all(
    group: GroupCommit[str, str], items: list[str]
) -> tuple[dict[str, object], list[threading.Thread]]:
    """Submit each item from its own thread; returns once all are queued behind the leader."""
    outcomes: dict[str, object] = {}

    def submit(item: str) -> None:
        try:
            outcomes[item] = group.submit(item)
        except Exception as exc:
            outcomes[item] = exc

    threads = [threading.Thread(target=submit, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while group.queued < len(items) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert group.queued == len(items)
    return outcomes, threads


def _join(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def test_items_that_wait_are_written_in_one_batch(ctx: ServiceContext) -> None:
    def write(session: Session, items: Sequence[str]) -> list[str | GpuyardError]:
        return [f"ok:{item}" for item in items]

    group: GroupCommit[str, str] = GroupCommit(ctx.db, write)
    gate, leader = _start_blocked_leader(group)
    outcomes, threads = _submit_all(group, [f"i{i}" for i in range(9)])
    gate.release.set()
    _join(leader, *threads)
    assert gate.sizes == [1, 9]
    assert outcomes == {f"i{i}": f"ok:i{i}" for i in range(9)}


def test_an_unexpected_failure_rolls_back_the_batch_and_retries_each_alone(
    ctx: ServiceContext,
) -> None:
    """One poisoned item: the batch's transaction rolls back whole (its audit events with
    it), then each item is written alone, so the others commit and only it fails."""

    def write(session: Session, items: Sequence[str]) -> list[str | GpuyardError]:
        for item in items:
            record_audit(session, SYSTEM_ACTOR, "test.item", "test", item, ctx.now())
            if item == "poison":
                raise RuntimeError("disk on fire")
        return [f"ok:{item}" for item in items]

    group: GroupCommit[str, str] = GroupCommit(ctx.db, write)
    gate, leader = _start_blocked_leader(group)
    items = ["a", "b", "poison", "c", "d"]
    outcomes, threads = _submit_all(group, items)
    gate.release.set()
    _join(leader, *threads)
    assert {k: str(v) for k, v in outcomes.items()} == {
        "a": "ok:a", "b": "ok:b", "poison": "disk on fire", "c": "ok:c", "d": "ok:d"
    }  # fmt: skip
    assert gate.sizes == [1, 5, 1, 1, 1, 1, 1]  # the five failed whole, then one by one
    with ctx.db.read() as session:
        written = list(
            session.scalars(
                select(AuditEventRow.target_id).where(AuditEventRow.action == "test.item")
            )
        )
    assert sorted(w for w in written if w) == ["a", "b", "c", "d", "first"]
    report = verify_audit_log(ctx.db)
    assert report.intact, report.problem


def test_async_submissions_are_written_by_the_writer_thread(ctx: ServiceContext) -> None:
    """Awaited from an event loop: outcomes (results and a submission's own error) come
    back on the loop, and the writer thread leaves once idle, to start again on demand."""

    def write(session: Session, items: Sequence[str]) -> list[str | GpuyardError]:
        return [InvalidInput("bad") if item == "bad" else f"ok:{item}" for item in items]

    group: GroupCommit[str, str] = GroupCommit(ctx.db, write, writer_idle_s=0.05)

    async def submit_all(items: list[str]) -> list[object]:
        return await asyncio.gather(
            *(group.submit_async(item) for item in items), return_exceptions=True
        )

    outcomes = asyncio.run(submit_all(["a", "bad", "c"]))
    assert outcomes[0] == "ok:a"
    assert isinstance(outcomes[1], InvalidInput)
    assert outcomes[2] == "ok:c"
    deadline = time.monotonic() + 5
    while group._writer is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert group._writer is None  # idle: gone
    assert asyncio.run(submit_all(["d"])) == ["ok:d"]  # and back on demand


def test_the_async_api_path_commits_before_answering(ctx: ServiceContext) -> None:
    caller = admin_caller(ctx)

    async def submit() -> Workload:
        return await create_workload_async(ctx, caller, WorkloadCreate(image="busybox", name="aw"))

    row = asyncio.run(submit())
    with ctx.db.read() as session:  # durable by the time the answer came
        stored = session.get(WorkloadRow, row.id)
    assert stored is not None
    assert stored.name == "aw"

    async def invalid() -> Workload:
        spec = WorkloadCreate(image=" ", name="bad name!", cluster_id="nope")
        return await create_workload_async(ctx, caller, spec)

    with pytest.raises(InvalidInput) as caught:
        asyncio.run(invalid())
    fields = {e.field for e in caught.value.errors}
    assert fields == {"image", "name", "cluster_id"}  # the database's finding too


def test_a_submission_sets_every_column_of_the_workload_row(ctx: ServiceContext) -> None:
    """Submissions are inserted with Core from a hand-written dict: a new column must be
    added there too (or it would silently be NULL in the row and the answer)."""
    from gpuyard.services.workloads.submission import _new_workload
    from gpuyard.store.workloads import _new_workload_values

    caller = admin_caller(ctx)
    workload = _new_workload(
        caller, WorkloadCreate(image="busybox"), "n", Resources(1000), ctx.now()
    )
    columns = set(WorkloadRow.__table__.columns.keys())
    # change_mark is the database's own (set by triggers, migration 0005).
    assert set(_new_workload_values(workload)) == columns - {"change_mark"}
