"""The live feed: one reader of the change marks, numbered events, exact resumes, and a
fan-out in which a slow or departed client costs nobody else anything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import admin_caller, make_context, make_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Membership
from gpuyard.auth.roles import Role
from gpuyard.domain.workload_records import Workload
from gpuyard.services.context import ServiceContext
from gpuyard.services.live.changes import (
    QUEUE_RECOUNT_S,
    Change,
    DatabaseChanges,
    QueueChanged,
    ServerChanged,
    WorkloadChanged,
)
from gpuyard.services.live.feed import LiveFeed
from gpuyard.services.live.subscription import Resync, StreamEvent, Subscription, Viewer
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import delete_workload, stop_workload
from gpuyard.services.workloads.lifecycle import advance_lifecycles
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.live_changes import servers_changed_since, workloads_changed_since

ADMIN = Viewer(Caller("admin-id", "admin@example.com", Role.ADMIN), Membership())


def _workload_ids(changes: list[Change]) -> list[str]:
    return [c.workload.id for c in changes if isinstance(c, WorkloadChanged)]


def test_changes_from_another_engine_are_read_once_each(clock_ctx: ServiceContext) -> None:
    source = DatabaseChanges(clock_ctx.db)
    source.start()
    assert source.poll() == []
    other = make_context(clock_ctx.settings)  # another process on the same database
    try:
        created = create_workload(
            other, admin_caller(other), WorkloadCreate(image="busybox", gpu=1)
        )
        first = source.poll()
        assert _workload_ids(first) == [created.id]
        assert any(isinstance(c, QueueChanged) for c in first)  # it entered the queue
        assert source.poll() == []  # nothing twice
        run_scheduling_cycle(other)
        placed = source.poll()
    finally:
        other.db.dispose()
    assert _workload_ids(placed) == [created.id]
    workload = next(c.workload for c in placed if isinstance(c, WorkloadChanged))
    assert workload.status != "pending"
    assert workload.placements
    servers = [c.server for c in placed if isinstance(c, ServerChanged)]
    assert [s.id for s in servers] == [workload.placements[0].server_id]
    assert servers[0].alloc_gpu_milli == 1000
    assert any(isinstance(c, QueueChanged) for c in placed)  # it left the queue
    assert source.poll() == []


def test_a_waiting_workload_deleted_moves_the_queue_at_the_next_recount(
    clock_ctx: ServiceContext,
) -> None:
    """A deleted row leaves no change mark to read: the queue's members are read again in
    full every QUEUE_RECOUNT_S, and one that vanished is a queue change."""
    now = [0.0]
    source = DatabaseChanges(clock_ctx.db, clock=lambda: now[0])
    source.start()
    caller = admin_caller(clock_ctx)
    # Never placed: five whole servers at once on a fleet of four (each fits one, so it
    # is not refused as something that can never run).
    never = WorkloadCreate(image="busybox", gpu=8, replicas=5, gang=True)
    created = create_workload(clock_ctx, caller, never)
    assert any(isinstance(c, QueueChanged) for c in source.poll())
    delete_workload(clock_ctx, caller, created.id)
    assert source.poll() == []  # nothing to read: the row is gone
    now[0] = QUEUE_RECOUNT_S
    assert source.poll() == [QueueChanged()]
    now[0] = 2 * QUEUE_RECOUNT_S
    assert source.poll() == []  # once


#: What a hypothesis run does between two polls of the stream.
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from([0, 0.5, 1, 2, 8, 40])),
        st.tuples(st.just("schedule"), st.none()),
        st.tuples(st.just("advance"), st.none()),
        st.tuples(st.just("stop"), st.integers(min_value=0, max_value=20)),
    ),
    min_size=1,
    max_size=12,
)


def _truth(ctx: ServiceContext) -> tuple[dict[str, Workload], dict[str, Any], set[str]]:
    with ctx.db.read() as session:
        workloads = {w.id: w for w, _ in workloads_changed_since(session, 0)}
        servers = {
            s.id: (s.status, s.allocated, tuple((g.index, g.allocated_milli) for g in s.gpus))
            for s, _ in servers_changed_since(session, 0)
        }
    pending = {w.id for w in workloads.values() if w.status == "pending"}
    return workloads, servers, pending


@settings(max_examples=12, deadline=None)
@given(steps=_STEPS)
def test_the_stream_converges_to_the_database(tmp_path_factory: Any, steps: list[Any]) -> None:
    """Whatever is done between two polls, the latest event of every workload and server
    is the database's state after the poll, and the queue moved iff its members did."""
    ctx = make_context(make_settings(tmp_path_factory.mktemp("live") / "data", None))
    try:
        caller = admin_caller(ctx)
        source = DatabaseChanges(ctx.db)
        source.start()
        seen_workloads, _, pending_before = _truth(ctx)
        seen_servers: dict[str, Any] = dict(_truth(ctx)[1])
        for action, arg in steps:
            if action == "submit":
                # 40: a gang of five 8-GPU replicas, on four servers: it waits forever.
                big = {"gpu": 8, "replicas": 5, "gang": True} if arg == 40 else {"gpu": arg}
                create_workload(ctx, caller, WorkloadCreate(image="busybox", **big))
            elif action == "schedule":
                run_scheduling_cycle(ctx)
            elif action == "advance":
                advance_lifecycles(ctx)
            elif seen_workloads:
                victim = sorted(seen_workloads)[arg % len(seen_workloads)]
                if seen_workloads[victim].status not in ("succeeded", "failed", "stopped"):
                    stop_workload(ctx, caller, victim)
            changes = source.poll()
            for change in changes:
                if isinstance(change, WorkloadChanged):
                    seen_workloads[change.workload.id] = change.workload
                elif isinstance(change, ServerChanged):
                    s = change.server
                    seen_servers[s.id] = (
                        s.status,
                        s.allocated,
                        tuple((g.index, g.allocated_milli) for g in s.gpus),
                    )
            workloads, servers, pending = _truth(ctx)
            assert seen_workloads == workloads
            assert seen_servers == servers
            waiting_changed = any(
                isinstance(c, WorkloadChanged) and c.workload.status == "pending" for c in changes
            )
            queue_moved = pending != pending_before or waiting_changed
            assert any(isinstance(c, QueueChanged) for c in changes) is queue_moved
            pending_before = pending
    finally:
        ctx.db.dispose()


@pytest.fixture
def pg_ctx(tmp_path: Path, postgres_url: str) -> Iterator[ServiceContext]:
    ctx = make_context(make_settings(tmp_path / "data", postgres_url))
    yield ctx
    ctx.db.dispose()


@pytest.mark.integration
@pytest.mark.postgres
def test_a_change_committed_out_of_order_is_not_lost(pg_ctx: ServiceContext) -> None:
    """PostgreSQL: a transaction with a lower id commits after a higher one was read;
    its change still arrives, once, and the higher one is not sent again."""
    caller = admin_caller(pg_ctx)
    older = create_workload(pg_ctx, caller, WorkloadCreate(image="busybox", priority=1))
    newer = create_workload(pg_ctx, caller, WorkloadCreate(image="busybox", priority=1))
    source = DatabaseChanges(pg_ctx.db)
    source.start()
    engine = create_engine(pg_ctx.db.engine.url)
    try:
        with engine.connect() as slow, engine.connect() as fast:
            slow_tx = slow.begin()  # takes its transaction id first...
            slow.execute(text("UPDATE workloads SET priority = 2 WHERE id = :id"), {"id": older.id})
            with fast.begin():  # ...and commits after this one
                fast.execute(
                    text("UPDATE workloads SET priority = 4 WHERE id = :id"), {"id": newer.id}
                )
            seen_first = source.poll()
            assert _workload_ids(seen_first) == [newer.id]
            assert source.poll() == []  # the window is read again, but nothing is resent
            slow_tx.commit()
        late = source.poll()
    finally:
        engine.dispose()
    assert _workload_ids(late) == [older.id]
    assert next(c.workload for c in late if isinstance(c, WorkloadChanged)).priority == 2
    assert source.poll() == []


class ListSource:
    """A change source that hands out what a test puts in (the feed's logic alone)."""

    def __init__(self) -> None:
        self.waiting: list[Change] = []

    def start(self) -> None:
        pass

    def poll(self) -> list[Change]:
        taken, self.waiting = self.waiting, []
        return taken


def _feed(history: int = 100) -> LiveFeed:
    return LiveFeed(ListSource(), poll_interval_s=3600, history=history)


async def _open(feed: LiveFeed, last_event_id: str | None = None, queued: int = 100) -> Any:
    return feed.subscribe(ADMIN, asyncio.get_running_loop(), queued, last_event_id)


async def _take(subscription: Subscription) -> list[StreamEvent | Resync]:
    await asyncio.sleep(0)  # let deliveries land
    return await subscription.next(0.05) or []


@settings(max_examples=60, deadline=None)
@given(
    published=st.integers(min_value=0, max_value=40),
    history=st.integers(min_value=1, max_value=20),
    last=st.integers(min_value=-2, max_value=45),
)
def test_a_resume_replays_exactly_what_followed_or_says_resync(
    published: int, history: int, last: int
) -> None:
    async def scenario() -> None:
        feed = _feed(history)
        try:
            feed.publish([QueueChanged() for _ in range(published)])
            subscription = await _open(feed, feed.event_id(last) if last >= 0 else "junk")
            got = await _take(subscription)
            oldest_kept = max(1, published - history + 1)
            if 0 <= last <= published and last >= oldest_kept - 1:
                assert [e.seq for e in got] == list(range(last + 1, published + 1))
                assert all(isinstance(e, StreamEvent) for e in got)
            else:
                assert len(got) == 1
                assert isinstance(got[0], Resync)
                assert got[0].seq == published
            feed.publish([QueueChanged()])  # and the live stream carries on after it
            assert [e.seq for e in await _take(subscription)] == [published + 1]
        finally:
            feed.close()

    asyncio.run(scenario())


def test_a_slow_client_is_told_to_resync_and_holds_up_nobody() -> None:
    async def scenario() -> None:
        feed = _feed(history=1000)
        try:
            slow = await _open(feed, queued=5)
            keeping_up = await _open(feed, queued=5)
            for _ in range(4):
                feed.publish([QueueChanged() for _ in range(3)])
                got = await _take(keeping_up)
                assert [e.seq for e in got] == [e.seq for e in got if isinstance(e, StreamEvent)]
                assert len(got) == 3
            await asyncio.sleep(0)
            assert len(slow._queue) <= 5  # bounded, however far behind it is
            backlog = await _take(slow)
            resyncs = [e for e in backlog if isinstance(e, Resync)]
            assert resyncs, backlog
            assert backlog[-1].seq == 12  # what follows the resync is the newest
        finally:
            feed.close()

    asyncio.run(scenario())


def _workload_change(owner_id: str, team_id: str | None) -> WorkloadChanged:
    from datetime import UTC, datetime

    from gpuyard.domain.resources import Resources

    now = datetime.now(UTC)
    workload = Workload(
        id=f"w-{owner_id}",
        name="w",
        owner_id=owner_id,
        team_id=team_id,
        cluster_id=None,
        status="pending",
        reason=None,
        reason_code=None,
        image="busybox",
        command=None,
        env={},
        plain_env_keys=(),
        ports=(),
        request=Resources(),
        gpu_model=None,
        priority=3,
        preemptible=True,
        replicas=1,
        gang=False,
        node_selector={},
        duration_s=None,
        preemption_count=0,
        created_at=now,
        updated_at=now,
        started_at=None,
        finished_at=None,
        placements=(),
    )
    return WorkloadChanged(workload)


@pytest.mark.parametrize(
    ("role", "membership", "owner", "team", "readable"),
    [
        pytest.param(Role.USER, Membership(), "me", None, True, id="own"),
        pytest.param(Role.USER, Membership(), "other", None, False, id="another user's"),
        pytest.param(
            Role.USER,
            Membership(member_of=frozenset({"t"}), readable=frozenset({"t"})),
            "other",
            "t",
            True,
            id="a team-mate's, the team shares",
        ),
        pytest.param(
            Role.USER,
            Membership(member_of=frozenset({"t"})),
            "other",
            "t",
            False,
            id="a team-mate's, the team does not share",
        ),
        pytest.param(Role.OPERATOR, Membership(), "other", None, True, id="operator"),
        pytest.param(Role.ADMIN, Membership(), "other", "t", True, id="admin"),
    ],
)
def test_a_viewer_reads_workloads_by_the_read_policy(
    role: Role, membership: Membership, owner: str, team: str | None, readable: bool
) -> None:
    viewer = Viewer(Caller("me", "me@example.com", role), membership)
    assert viewer.may_read(_workload_change(owner, team)) is readable
    assert viewer.may_read(QueueChanged()) is True


def test_a_stream_let_go_costs_the_feed_nothing() -> None:
    async def scenario() -> None:
        feed = _feed()
        try:
            subscription = await _open(feed)
            assert feed.subscribers == 1
            feed.unsubscribe(subscription)
            assert feed.subscribers == 0
            feed.publish([QueueChanged()])
            assert await _take(subscription) == []
        finally:
            feed.close()

    asyncio.run(scenario())


def test_a_closed_feed_ends_its_streams_and_a_shut_down_one_opens_none() -> None:
    async def scenario() -> None:
        feed = _feed()
        subscription = await _open(feed)
        feed.close()
        await asyncio.sleep(0)
        assert await subscription.next(1) is None
        again = await _open(feed)  # a closed feed opens again (a test client re-entered)
        assert feed.subscribers == 1
        feed.shut_down()
        await asyncio.sleep(0)
        assert await again.next(1) is None
        late = await _open(feed)
        await asyncio.sleep(0)
        assert await late.next(1) is None  # the server is going: ends at once
        assert feed.subscribers == 0

    asyncio.run(scenario())


def test_each_change_is_encoded_once_whatever_the_number_of_streams() -> None:
    """The feed encodes a change once, in publish, for every stream it goes to (however
    long the history), and each stream still drops what its viewer may not read."""
    encoded: list[Change] = []

    def encode(change: Change) -> str:
        encoded.append(change)
        return f"data-{len(encoded)}"

    async def scenario() -> None:
        feed = LiveFeed(ListSource(), poll_interval_s=3600, history=10_000, encode=encode)
        try:
            admins = [await _open(feed) for _ in range(3)]
            outsider = Viewer(Caller("me", "me@example.com", Role.USER), Membership())
            mine = feed.subscribe(outsider, asyncio.get_running_loop(), 100)
            theirs = _workload_change("other", None)
            feed.publish([theirs, QueueChanged(), _workload_change("me", None)])
            for stream in admins:
                got = await _take(stream)
                assert [e.data for e in got if isinstance(e, StreamEvent)] == [
                    "data-1",
                    "data-2",
                    "data-3",
                ]
            assert [e.data for e in await _take(mine) if isinstance(e, StreamEvent)] == [
                "data-2",
                "data-3",
            ]
        finally:
            feed.close()

    asyncio.run(scenario())
    assert len(encoded) == 3  # once per change, not per stream


def test_a_change_that_cannot_be_encoded_is_skipped_not_fatal() -> None:
    def encode(change: Change) -> str:
        if isinstance(change, QueueChanged):
            raise ValueError("not encodable")
        return "ok"

    feed = LiveFeed(ListSource(), poll_interval_s=3600, history=10, encode=encode)
    events = feed.publish([QueueChanged(), _workload_change("me", None)])
    assert [(e.seq, e.data) for e in events] == [(1, "ok")]
