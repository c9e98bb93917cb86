"""The cross-process bus (services/bus) with a real redis-server and a real PostgreSQL.

Two ServiceContexts on one database stand for two processes (each has its own caches,
wake-ups and bus connection; they share only the database and Redis): a commit through
one wakes the other's scheduler, a revocation clears the other's caller cache, an outage
of Redis falls back to polling and a restart brings the bus back. Without Redis, on
PostgreSQL, LISTEN/NOTIFY carries the same notices. No loops run here, so nothing but the
bus (or the change watch, called by the test) can wake anything.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from factories.app import admin_caller, make_context, make_settings
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete, select, text, update
from support.local_server import start_or_skip
from support.redis import RedisServer

from gpuyard.api.app import create_app
from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.bus.notices import ChangeBus, Notice, decode_notice, encode_notice
from gpuyard.services.bus.redis_bus import CHANNEL
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.change_watch import ChangeWatch
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.database import _written_table
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

#: How long a test waits for what the bus does in milliseconds (a failure's bound only).
DEADLINE_S = 5.0


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


def submit(ctx: ServiceContext) -> None:
    create_workload(ctx, admin_caller(ctx), WorkloadCreate(image="busybox"))


def wake_latency(sender: ServiceContext, receiver: ServiceContext) -> float:
    """Seconds from a submission's commit in ``sender`` to ``receiver``'s scheduler
    wake-up (fails after the deadline)."""
    receiver.scheduler_wakeup.wait(0)  # forget earlier hints
    submit(sender)
    committed = time.monotonic()
    assert receiver.scheduler_wakeup.wait(DEADLINE_S), "the other process was not woken"
    return time.monotonic() - committed


def started_pair(settings_for: Callable[[], Any]) -> tuple[ServiceContext, ServiceContext]:
    one = make_context(settings_for())
    two = make_context(settings_for())  # another "process" on the same database
    for ctx in (one, two):
        ctx.bus.start()
    wait_until(lambda: one.bus.live and two.bus.live)
    return one, two


def stop_pair(*contexts: ServiceContext) -> None:
    for ctx in contexts:
        ctx.bus.stop()
        ctx.db.dispose()


@pytest.fixture
def redis_pair(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[ServiceContext, ServiceContext]]:
    one, two = started_pair(
        lambda: make_settings(tmp_path / "data", None, redis_url=redis_server.url)
    )
    try:
        yield one, two
    finally:
        stop_pair(one, two)


# -- the notices themselves ------------------------------------------------------------------
@given(st.sampled_from(["change", "wake", "callers"]), st.text(max_size=40), st.text(max_size=40))
def test_a_notice_reads_back_as_sent(kind: Any, ident: str, sender: str) -> None:
    notice = Notice(kind, ident)
    assert decode_notice(encode_notice(notice, sender)) == (notice, sender)


@given(st.one_of(st.text(max_size=600), st.binary(max_size=600)))
def test_anything_else_on_the_channel_is_dropped_not_raised(payload: str | bytes) -> None:
    decoded = decode_notice(payload)
    if decoded is not None:  # only well-formed notices of the three kinds pass
        assert decoded[0].kind in ("change", "wake", "callers")


def test_a_resync_or_a_long_payload_from_the_wire_is_refused() -> None:
    assert decode_notice('{"k":"resync","i":"","s":"x"}') is None  # local only
    assert decode_notice('{"k":"wake","i":"' + "a" * 600 + '","s":"x"}') is None
    assert decode_notice('["wake"]') is None


def test_without_redis_or_postgresql_the_bus_is_local(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None))
    try:
        assert type(ctx.bus) is ChangeBus
        with TestClient(create_app(ctx)) as client:
            assert client.get("/readyz").json() == {"status": "ready", "bus": "none: off"}
        ctx.bus.start()
        assert not ctx.bus.live
        assert ctx.bus.health().describe() == "off"
        heard: list[tuple[Notice, bool]] = []
        ctx.bus.add_listener(lambda notice, own: heard.append((notice, own)))
        submit(ctx)  # the commit is still announced to this process's own listeners
        assert (Notice("change", "workloads"), True) in heard
    finally:
        ctx.db.dispose()


def write_then_fail(ctx: ServiceContext) -> None:
    with ctx.db.write() as session:
        session.execute(text("UPDATE servers SET name = name"))
        raise RuntimeError("rolled back")


def test_a_rolled_back_write_announces_nothing(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None))
    try:
        heard: list[Notice] = []
        ctx.bus.add_listener(lambda notice, _own: heard.append(notice))
        with pytest.raises(RuntimeError, match="rolled back"):
            write_then_fail(ctx)
        with ctx.db.write() as session:
            session.execute(text("UPDATE clusters SET name = name"))  # not a watched table
        assert heard == []
        with ctx.db.write() as session:
            session.execute(text("UPDATE servers SET name = name"))
        assert heard == [Notice("change", "servers")]
    finally:
        ctx.db.dispose()


spaces = st.sampled_from([" ", "  ", "\n", "\t", "\n  "])
tables = st.sampled_from(["workloads", "allocations", "servers", "server_gpus", "clusters"])


def any_case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower(), word.title()])


TEXT_VERBS = ["INSERT INTO", "INSERT OR IGNORE INTO", "REPLACE INTO", "UPDATE",
              "UPDATE OR ROLLBACK", "DELETE FROM"]  # fmt: skip


@st.composite
def sql_text_writes(draw: st.DrawFn) -> tuple[str, str]:
    """A write as hand-written SQL text may spell it, and the table it writes."""
    table = draw(tables)
    verb = draw(st.sampled_from(TEXT_VERBS))
    words = [draw(any_case(word)) for word in verb.split()]
    name = draw(st.sampled_from([table, f'"{table}"']))
    schema = draw(st.sampled_from(["", "main.", '"public".', "public . "]))
    lead = draw(st.sampled_from(["", "/* a comment */", "-- a comment\n", "/* x */ -- y\n"]))
    gap = draw(spaces)
    return f"{draw(spaces)}{lead}{gap.join(words)}{gap}{schema}{name} x", table


@given(sql_text_writes())
def test_sql_text_names_the_table_it_writes(write: tuple[str, str]) -> None:
    statement, table = write
    assert _written_table(statement, None) == table


@given(tables, st.sampled_from(["SELECT", "PRAGMA", "EXPLAIN", "VALUES"]))
def test_a_read_never_counts_as_a_write(table: str, verb: str) -> None:
    assert _written_table(f"{verb} 'UPDATE {table}'; UPDATE {table}", None) is None


def test_a_commit_outside_write_is_not_announced_by_the_next_write(tmp_path: Path) -> None:
    # A migration commits on the writer's connection directly; its tables, noted on this
    # thread, must not ride along with the next write's notices.
    ctx = make_context(make_settings(tmp_path / "data", None))
    try:
        heard: list[Notice] = []
        ctx.bus.add_listener(lambda notice, _own: heard.append(notice))
        with ctx.db.writer.connect() as connection:
            connection.execute(text("UPDATE servers SET name = name"))
            connection.commit()
        with ctx.db.write() as session:
            session.execute(text("UPDATE clusters SET name = name"))
        assert heard == []
    finally:
        ctx.db.dispose()


def cte_update_of_workloads() -> Any:
    names = select(WorkloadRow.id).cte("names")
    return (
        update(WorkloadRow)
        .where(WorkloadRow.id.in_(select(names.c.id)))
        .values(name=WorkloadRow.name)
    )


#: Writes that change a watched table's rows or their change marks (migration 0005's
#: triggers: allocations mark their workload, server_gpus their server), however the
#: statement is spelt, and the notice each must give.
MARKING_WRITES = [
    pytest.param(
        lambda: update(ServerGpuRow).values(allocated_milli=ServerGpuRow.allocated_milli),
        "servers",
        id="core-gpus",
    ),
    pytest.param(
        lambda: delete(AllocationRow).where(AllocationRow.workload_id == "none"),
        "workloads",
        id="core-allocations",
    ),
    pytest.param(lambda: text("UPDATE server_gpus SET model = model"), "servers", id="text-gpus"),
    pytest.param(
        lambda: text("/* why */ UPDATE workloads SET name = name"), "workloads", id="comment"
    ),
    pytest.param(lambda: text('UPDATE main."servers" SET name = name'), "servers", id="schema"),
    pytest.param(
        lambda: text("INSERT OR IGNORE INTO allocations SELECT * FROM allocations"),
        "workloads",
        id="or-ignore",
    ),
    pytest.param(cte_update_of_workloads, "workloads", id="cte"),
]


@pytest.mark.parametrize(("statement", "table"), MARKING_WRITES)
def test_every_write_that_moves_a_change_mark_is_announced(
    tmp_path: Path, statement: Callable[[], Any], table: str
) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None))
    try:
        heard: list[Notice] = []
        ctx.bus.add_listener(lambda notice, _own: heard.append(notice))
        with ctx.db.write() as session:
            session.execute(statement())
        assert heard == [Notice("change", table)]
    finally:
        ctx.db.dispose()


# -- Redis -----------------------------------------------------------------------------------
def test_a_submission_through_one_process_wakes_the_others_scheduler(
    redis_pair: tuple[ServiceContext, ServiceContext],
) -> None:
    one, two = redis_pair
    assert one.bus.health().describe() == "connected"
    with TestClient(create_app(one)) as client:  # the app starts and stops the bus too
        assert client.get("/readyz").json() == {"status": "ready", "bus": "redis: connected"}
    assert one.bus.health().describe() == "off"  # stopped with the app
    one.bus.start()
    wait_until(lambda: one.bus.live)
    latencies = [wake_latency(one, two) for _ in range(5)] + [wake_latency(two, one)]
    # Well under the change watch's 0.2 s polling (which does not run here at all).
    assert statistics.median(latencies) < 0.1, latencies


def test_the_change_watch_reads_nothing_while_the_bus_carries_commits(
    redis_pair: tuple[ServiceContext, ServiceContext],
) -> None:
    one, two = redis_pair
    watch = ChangeWatch(two)
    submit(one)
    assert watch() is False
    assert watch.last is None  # no fingerprint read: the bus says what moved


def test_a_wake_up_of_any_loop_reaches_the_other_process(
    redis_pair: tuple[ServiceContext, ServiceContext],
) -> None:
    one, two = redis_pair
    for name, wakeup in two.wakeups.items():
        wakeup.wait(0)
        one.wakeups[name].notify()
        assert wakeup.wait(DEADLINE_S), name


def test_garbage_on_the_channel_is_dropped_and_the_bus_goes_on(
    redis_pair: tuple[ServiceContext, ServiceContext], redis_server: RedisServer
) -> None:
    one, two = redis_pair
    heard: list[Notice] = []
    two.bus.add_listener(lambda notice, own: heard.append(notice))
    raw = redis.Redis.from_url(redis_server.url)
    try:
        for payload in [b"\xff\xfe", b"{}", b"[1]", b'{"k":"wake","i":"no-such-loop","s":"x"}',
                        b'{"k":"drop-tables","i":"","s":"x"}', b"x" * 10_000]:  # fmt: skip
            raw.publish(CHANNEL, payload)
    finally:
        raw.close()
    one.starter_wakeup.notify()
    wait_until(lambda: Notice("wake", "starter") in heard)
    assert heard == [Notice("wake", "no-such-loop"), Notice("wake", "starter")]
    assert two.bus.live


def test_a_cleared_caller_cache_is_cleared_in_the_other_process(
    redis_pair: tuple[ServiceContext, ServiceContext],
) -> None:
    one, two = redis_pair
    before = two.callers.generation
    one.callers.clear()  # what a revocation, logout or password change does
    wait_until(lambda: two.callers.generation > before)


def test_redis_down_falls_back_to_polling_and_returns_to_the_bus(tmp_path: Path) -> None:
    with start_or_skip(RedisServer()) as redis:
        one, two = started_pair(lambda: make_settings(tmp_path / "data", None, redis_url=redis.url))
        try:
            redis.halt()
            wait_until(lambda: not two.bus.live and not one.bus.live)
            assert two.bus.health().describe().startswith("down since ")
            # Nothing arrives by the bus now; the change watch reads the database again.
            watch = ChangeWatch(two)
            assert watch() is False  # the baseline
            two.scheduler_wakeup.wait(0)
            submit(one)  # still correct: written, only not announced
            assert watch() is True
            assert two.scheduler_wakeup.wait(0)
            # The login throttle decides with this process's windows meanwhile.
            attempt = two.login_throttle.begin_attempt("10.0.0.1", "someone@example.com", 1.0)
            assert attempt.shared_member is None
            two.login_throttle.succeeded(attempt)

            redis.resume()
            wait_until(lambda: one.bus.live and two.bus.live, timeout=15)
            assert wake_latency(one, two) < DEADLINE_S
            assert watch() is False  # off the database again
            assert watch.last is None
            attempt = two.login_throttle.begin_attempt("10.0.0.1", "someone@example.com", 2.0)
            assert attempt.shared_member is not None
        finally:
            stop_pair(one, two)


def bus_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name in ("bus-listen", "bus-publish")}


def test_a_publish_that_times_out_does_not_leave_the_bus_down(tmp_path: Path) -> None:
    # Redis hangs for a while (a fork, swap, a stalled host): this process's publish times
    # out, so it is down; its subscription never failed. Once Redis answers again the bus
    # must come back, or this process would poll, and go unheard, for good.
    with start_or_skip(RedisServer()) as redis:
        one, two = started_pair(lambda: make_settings(tmp_path / "data", None, redis_url=redis.url))
        try:
            redis.freeze()
            one.starter_wakeup.notify()
            wait_until(lambda: not one.bus.live)
            redis.thaw()
            wait_until(lambda: one.bus.live and two.bus.live, timeout=15)
            assert one.bus.health().describe() == "connected"
            assert wake_latency(one, two) < DEADLINE_S
            assert wake_latency(two, one) < DEADLINE_S
        finally:
            redis.thaw()
            stop_pair(one, two)


def test_a_flapping_redis_does_not_resync_every_loop_ten_times_a_second(
    redis_pair: tuple[ServiceContext, ServiceContext], redis_server: RedisServer
) -> None:
    # Redis drops the subscription as soon as it is made (a proxy, a restart loop): every
    # reconnect resyncs (every loop woken, the caller cache cleared), so the backoff must
    # keep growing while no subscription lasts.
    _one, two = redis_pair
    resyncs: list[float] = []
    two.bus.add_listener(
        lambda notice, _own: resyncs.append(time.monotonic()) if notice.kind == "resync" else None
    )
    raw = redis.Redis.from_url(redis_server.url)
    try:
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            raw.client_kill_filter(_type="pubsub")
            time.sleep(0.02)
    finally:
        raw.close()
    # Each cycle resyncs twice (down, connected again); waits of 0.1, 0.2, 0.4, 0.8, 1.6 s
    # (jittered down to half) fit about eight cycles in 3 s; without growth, thirty.
    assert 2 <= len(resyncs) <= 20, len(resyncs)
    wait_until(lambda: two.bus.live, timeout=15)


def test_a_revocation_waits_briefly_for_a_hung_redis(tmp_path: Path) -> None:
    # The cache clear is published on the request's thread: a Redis that hangs must cost
    # that request well under the others' caller cache TTL, once, not seconds.
    with start_or_skip(RedisServer()) as redis:
        one, two = started_pair(lambda: make_settings(tmp_path / "data", None, redis_url=redis.url))
        try:
            redis.freeze()
            started = time.monotonic()
            one.callers.clear()
            assert time.monotonic() - started < 1.0
            assert not one.bus.live  # the next revocation does not wait at all
            started = time.monotonic()
            one.callers.clear()
            assert time.monotonic() - started < 0.1
        finally:
            redis.thaw()
            stop_pair(one, two)


def test_a_hung_redis_is_noticed_by_a_quiet_listener_and_stop_is_prompt(tmp_path: Path) -> None:
    # Nothing is published: only the listener can see that Redis stopped answering (its
    # socket stays open). Live while deaf would mean no polling and nothing heard.
    with start_or_skip(RedisServer()) as redis:
        before = bus_threads()
        one, two = started_pair(lambda: make_settings(tmp_path / "data", None, redis_url=redis.url))
        try:
            redis.freeze()
            wait_until(lambda: not one.bus.live and not two.bus.live, timeout=15)
            assert two.bus.health().describe().startswith("down since ")
            redis.thaw()
            wait_until(lambda: one.bus.live and two.bus.live, timeout=15)
            assert wake_latency(one, two) < DEADLINE_S
            redis.freeze()  # stopping while Redis hangs: no thread left behind
            started = time.monotonic()
            stop_pair(one, two)
            assert time.monotonic() - started < 5.0
            assert bus_threads() <= before
        finally:
            redis.thaw()
            stop_pair(one, two)


# -- PostgreSQL without Redis ----------------------------------------------------------------
def test_listen_notify_carries_the_notices_on_postgresql_without_redis(
    tmp_path: Path, postgres_url: str
) -> None:
    one, two = started_pair(lambda: make_settings(tmp_path / "data", postgres_url))
    try:
        assert one.bus.health().transport == "postgres"
        latencies = [wake_latency(one, two) for _ in range(3)]
        assert statistics.median(latencies) < 0.1, latencies
        before = two.callers.generation
        one.callers.clear()
        wait_until(lambda: two.callers.generation > before)
        two.starter_wakeup.wait(0)
        one.starter_wakeup.notify()
        assert two.starter_wakeup.wait(DEADLINE_S)
    finally:
        stop_pair(one, two)


@pytest.mark.parametrize("url", ["http://localhost:6379", "localhost:6379", "postgresql://x"])
def test_a_redis_url_of_another_scheme_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError, match="GPUYARD_REDIS_URL must start with redis://"):
        make_settings(tmp_path, None, redis_url=url)


def test_a_rolled_back_write_notifies_nothing_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    one, two = started_pair(lambda: make_settings(tmp_path / "data", postgres_url))
    try:
        heard: list[Notice] = []
        two.bus.add_listener(lambda notice, own: heard.append(notice) if not own else None)
        with pytest.raises(RuntimeError, match="rolled back"):
            write_then_fail(one)
        with one.db.write() as session:
            session.execute(text("UPDATE workloads SET name = name"))
        wait_until(lambda: Notice("change", "workloads") in heard)
        assert Notice("change", "servers") not in heard  # its NOTIFY rolled back with it
    finally:
        stop_pair(one, two)


def test_an_orm_change_flushed_by_the_commit_is_notified_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    # Nothing runs after the change in the block, so the ORM writes it while committing:
    # after the block's end, where the in-transaction NOTIFY is decided.
    one, two = started_pair(lambda: make_settings(tmp_path / "data", postgres_url))
    try:
        heard: list[Notice] = []
        two.bus.add_listener(lambda notice, own: heard.append(notice) if not own else None)
        with one.db.write() as session:
            server = session.scalars(select(ServerRow).limit(1)).one()
            server.name = "renamed-by-the-flush"
        wait_until(lambda: Notice("change", "servers") in heard)
    finally:
        stop_pair(one, two)


def test_the_bus_can_be_turned_off(tmp_path: Path, postgres_url: str) -> None:
    ctx = make_context(make_settings(tmp_path / "data", postgres_url, change_bus=False))
    try:
        assert type(ctx.bus) is ChangeBus
    finally:
        ctx.db.dispose()
