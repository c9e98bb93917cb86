"""The history loop (services/usage/sampling.py) over simulated servers, on SQLite and
PostgreSQL: ticks record movement, rollups hold the mean and highest of their raw samples,
and every level stays within its retention, pruned a bounded amount per tick."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from factories.clock import ManualClock
from sqlalchemy import delete, func, select

from gpuyard.domain.usage import (
    MINUTE_BUCKET_S,
    QUARTER_BUCKET_S,
    SERVER_FIGURES,
    HistoryWindow,
    bucket_start,
    roll_up,
)
from gpuyard.runtimes.simulated_usage import UTILIZATION_BAND
from gpuyard.services.context import ServiceContext
from gpuyard.services.usage import sampling
from gpuyard.services.usage.history import fleet_history, server_history
from gpuyard.services.usage.sampling import PRUNE_BUCKETS_PER_TICK, RAW, sample_usage
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.usage_history import StoredPoint, rows_between
from gpuyard.store.usage_tables import FLEET_SERIES, UsageSampleRow

INTERVAL_S = 30
RAW_KEPT_S = 1800
MINUTE_KEPT_S = 3600


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """The demo's simulated servers; short retentions; a hand-moved clock."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(tmp_path / "data", url, history_sample_interval_s=INTERVAL_S)
    # Below the minimums (model_copy does not validate), so pruning shows within hours.
    settings = settings.model_copy(
        update={"history_raw_retention_s": RAW_KEPT_S, "history_minute_retention_s": MINUTE_KEPT_S}
    )
    context = make_context(settings)
    context.clock = ManualClock()
    yield context
    context.db.dispose()


def _tick(ctx: ServiceContext, times: int) -> None:
    assert isinstance(ctx.clock, ManualClock)
    for _ in range(times):
        sample_usage(ctx)
        ctx.clock.advance(INTERVAL_S)


def _busy_server(ctx: ServiceContext) -> str:
    """Two whole GPUs running on one demo server; its id."""
    with authed_client(ctx) as api:
        response = api.post("/api/v1/workloads", json={"image": "busybox", "gpu": 2, "cpu": 2})
        assert response.status_code == 201, response.text
        settle(ctx)
        workload = api.get(f"/api/v1/workloads/{response.json()['id']}").json()
    assert workload["status"] == "running", workload
    return str(workload["server_id"])


def _rows(ctx: ServiceContext, bucket_s: int) -> list[UsageSampleRow]:
    with ctx.db.read() as session:
        query = select(UsageSampleRow).where(UsageSampleRow.bucket_s == bucket_s)
        return list(session.scalars(query))


def test_ticks_on_simulated_servers_record_movement(ctx: ServiceContext) -> None:
    server_id = _busy_server(ctx)
    _tick(ctx, 40)

    history = server_history(ctx, server_id, HistoryWindow.HOUR)

    assert history.bucket_s == INTERVAL_S
    assert len(history.points) == 40
    used = [i for i in range(8) if history.points[-1].figures[f"gpu.{i}.allocated"][0] == 100]
    assert len(used) == 2  # the two reserved devices
    utilizations = [p.figures[f"gpu.{used[0]}.utilization"][0] for p in history.points]
    assert len(set(utilizations)) > 10  # it moves
    low, high = UTILIZATION_BAND
    assert all(100 * low - 0.01 <= u <= 100 * high + 0.01 for u in utilizations)
    assert all(p.figures["gpu_allocated"][0] == 25 for p in history.points)  # 2 of 8
    fleet = fleet_history(ctx, HistoryWindow.HOUR)
    assert len(fleet.points) == 40
    assert 0 < fleet.points[-1].figures["gpu_allocated"][0] < 25  # more GPUs in the fleet
    assert fleet.points[-1].figures["gpu_utilization"][0] > 0


def _points(ctx: ServiceContext, bucket_s: int) -> list[StoredPoint]:
    with ctx.db.read() as session:
        return rows_between(session, bucket_s, 0, 2**40)


def test_rollups_hold_the_mean_and_highest_of_their_samples(ctx: ServiceContext) -> None:
    _busy_server(ctx)
    _tick(ctx, 2 * 60 + 1)  # one hour: the minute and quarter buckets closed so far

    raw = defaultdict(list)
    for point in _points(ctx, RAW):
        values = {name: avg for name, (avg, _) in point.figures.items()}
        raw[(point.series, bucket_start(point.t, MINUTE_BUCKET_S))].append(values)
    minutes = _points(ctx, MINUTE_BUCKET_S)
    checked = 0
    for row in minutes:
        if (row.series, row.t) not in raw:
            continue  # its raw samples were pruned since
        count, figures = roll_up(raw[(row.series, row.t)])
        assert row.samples == count == MINUTE_BUCKET_S // INTERVAL_S
        assert set(row.figures) == set(figures)
        for name, (avg, top) in figures.items():  # stored to 0.1 %
            assert row.figures[name] == (pytest.approx(avg, abs=0.051), top)
        checked += 1
    assert checked >= 20 * 5  # every closed minute of every series still in raw retention
    assert {row.series for row in minutes} >= {FLEET_SERIES}

    by_quarter = defaultdict(list)
    for row in minutes:
        by_quarter[(row.series, bucket_start(row.t, QUARTER_BUCKET_S))].append(row)
    quarters = _points(ctx, QUARTER_BUCKET_S)
    assert len(quarters) == 4 * len({row.series for row in minutes})
    for quarter in quarters:
        parts = by_quarter[(quarter.series, quarter.t)]
        assert quarter.samples == sum(p.samples for p in parts) == 30
        assert set(quarter.figures) <= set(SERVER_FIGURES)  # no per-GPU figures kept
        for name, (avg, top) in quarter.figures.items():
            assert top == max(p.figures[name][1] for p in parts)
            means = [p.figures[name][0] for p in parts]
            assert min(means) - 0.051 <= avg <= max(means) + 0.051


def _per_series(ctx: ServiceContext, bucket_s: int) -> dict[str, int]:
    with ctx.db.read() as session:
        query = (
            select(UsageSampleRow.series, func.count())
            .where(UsageSampleRow.bucket_s == bucket_s)
            .group_by(UsageSampleRow.series)
        )
        return {name: count for name, count in session.execute(query)}


def test_each_level_stays_within_its_retention_pruned_in_bounded_steps(
    ctx: ServiceContext,
) -> None:
    with ctx.db.read() as session:
        series = session.scalar(select(func.count()).select_from(ServerRow)) + 1
    _tick(ctx, 2 * 60 * 2)  # two hours

    raw_bound = RAW_KEPT_S // INTERVAL_S + 1
    minute_bound = MINUTE_KEPT_S // MINUTE_BUCKET_S + 1
    assert set(_per_series(ctx, RAW).values()) == {raw_bound}
    assert max(_per_series(ctx, MINUTE_BUCKET_S).values()) <= minute_bound
    assert len(_per_series(ctx, RAW)) == series

    # After three hours without a tick, one tick prunes a bounded number of buckets...
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(3 * 3600)
    tick = sample_usage(ctx)
    assert 0 < tick.pruned[RAW] <= PRUNE_BUCKETS_PER_TICK * series
    assert 0 < tick.pruned[MINUTE_BUCKET_S] <= PRUNE_BUCKETS_PER_TICK * series
    # ... and the following ticks work the backlog off.
    _tick(ctx, 40)
    assert max(_per_series(ctx, RAW).values()) <= raw_bound
    assert max(_per_series(ctx, MINUTE_BUCKET_S).values()) <= minute_bound


def test_two_ticks_in_one_slot_write_it_once(ctx: ServiceContext) -> None:
    """Two processes sampling the same slot (leases off) leave one row per series."""
    sample_usage(ctx)
    before = [(r.series, r.t, r.figures) for r in _rows(ctx, RAW)]
    sample_usage(ctx)

    assert sorted((r.series, r.t, r.figures) for r in _rows(ctx, RAW)) == sorted(before)


def _raw_of_slot(ctx: ServiceContext) -> dict[str, object]:
    return {r.series: r.figures for r in _rows(ctx, RAW)}


def test_a_tick_in_small_steps_writes_what_one_step_writes_and_rests_between_steps(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paced tick (pages of servers, rests between them) records the same samples as
    a tick that reads the whole fleet at once; its rests are bounded by the budget."""
    _busy_server(ctx)
    with ctx.db.read() as session:
        servers = int(session.scalar(select(func.count()).select_from(ServerRow)) or 0)
    assert servers >= 3
    monkeypatch.setattr(sampling, "STEP_SERVERS", 1000)
    sample_usage(ctx)
    whole = _raw_of_slot(ctx)
    with ctx.db.write() as session:
        session.execute(delete(UsageSampleRow))

    rests: list[float] = []
    monkeypatch.setattr(sampling, "STEP_SERVERS", 2)
    tick = sample_usage(ctx, pause=rests.append)

    assert _raw_of_slot(ctx) == whole
    assert len(whole) == servers + 1  # and the fleet's
    assert tick.servers == servers
    assert len(rests) == servers // 2  # after each full page (the next might be empty)
    assert all(r >= 0 for r in rests)
    assert sum(rests) == pytest.approx(tick.seconds["rest"])
    assert sum(rests) <= sampling.REST_SHARE * INTERVAL_S


def test_pacing_rests_in_proportion_to_the_work_and_within_its_budget() -> None:
    rests: list[float] = []
    pacing = sampling.Pacing(rests.append, budget_s=1.0)
    step = time.perf_counter() - 0.2  # a step that took 0.2 s
    pacing.after(step)
    assert rests[0] == pytest.approx(0.2 * (1 / sampling.DUTY - 1), rel=0.2)
    for _ in range(10):
        pacing.after(time.perf_counter() - 0.2)
    assert sum(rests) == pytest.approx(1.0)  # never past the budget
    assert pacing.rested_s == pytest.approx(1.0)
    unpaced = sampling.Pacing(None, budget_s=1.0)
    unpaced.after(time.perf_counter() - 0.2)
    assert unpaced.rested_s == 0


def test_a_rollup_cut_short_is_redone_by_the_next_tick(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fleet's rollup marks a bucket done and is written last: a bucket whose fleet
    row is missing (the tick stopped half way) is computed again, rows already there kept."""
    monkeypatch.setattr(sampling, "STEP_SERVERS", 2)
    _busy_server(ctx)
    _tick(ctx, 2 * 2 + 1)  # two minutes closed
    before = {(p.series, p.t): p for p in _points(ctx, MINUTE_BUCKET_S)}
    newest = max(t for _, t in before)
    server = next(s for s, t in before if t == newest and s != FLEET_SERIES)
    with ctx.db.write() as session:  # as if the tick stopped after the first page
        session.execute(
            delete(UsageSampleRow).where(
                UsageSampleRow.bucket_s == MINUTE_BUCKET_S,
                UsageSampleRow.t == newest,
                UsageSampleRow.series.in_([server, FLEET_SERIES]),
            )
        )

    sample_usage(ctx)  # the same slot: no new minute closed

    assert {(p.series, p.t): p for p in _points(ctx, MINUTE_BUCKET_S)} == before


def test_a_rollup_backlog_is_worked_off_a_bounded_number_of_buckets_per_tick(
    ctx: ServiceContext,
) -> None:
    assert isinstance(ctx.clock, ManualClock)
    _tick(ctx, 2 * 25)  # 25 minutes of raw samples, minutes rolled up as they close
    with ctx.db.write() as session:
        session.execute(delete(UsageSampleRow).where(UsageSampleRow.bucket_s != RAW))

    tick = sample_usage(ctx)

    minutes = {t for _, t in ((p.series, p.t) for p in _points(ctx, MINUTE_BUCKET_S))}
    assert len(minutes) == sampling.ROLLUP_BUCKETS_PER_TICK
    assert tick.rolled_up[MINUTE_BUCKET_S] > 0
    _tick(ctx, 3)
    minutes = {p.t for p in _points(ctx, MINUTE_BUCKET_S)}
    assert len(minutes) >= 25
