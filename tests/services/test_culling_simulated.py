"""Idle culling and maximum lifetime on the demo's simulated servers (issue 19), on SQLite
and PostgreSQL, with a hand-moved clock: the utilisation comes from the simulation (a
``sleep`` replica idles, anything else works at its allocation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from factories.clock import ManualClock
from factories.loop_failures import record_failures, status_and_reason
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gpuyard.services.context import ServiceContext
from gpuyard.services.culling import loop as culling_loop
from gpuyard.services.culling.loop import cull_workloads
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.culling_tables import WorkloadCullingRow
from gpuyard.store.workload_tables import WorkloadRow

WINDOW_S = 600
WARN_S = 120
TICK_S = 60


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """The demo's simulated servers; culling on by default: 5 % for 10 minutes."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(
        tmp_path / "data",
        url,
        idle_cull_mode="on",
        idle_cull_threshold_pct=5.0,
        idle_cull_window_s=WINDOW_S,
        idle_cull_warn_s=WARN_S,
    )
    context = make_context(settings)
    context.clock = ManualClock()
    yield context
    context.db.dispose()


def _launch(api: TestClient, ctx: ServiceContext, **body: Any) -> str:
    response = api.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1, **body})
    assert response.status_code == 201, response.text
    settle(ctx)
    workload = api.get(f"/api/v1/workloads/{response.json()['id']}").json()
    assert workload["status"] == "running", workload
    return str(workload["id"])


def _ticks(ctx: ServiceContext, seconds: int) -> None:
    assert isinstance(ctx.clock, ManualClock)
    for _ in range(seconds // TICK_S):
        cull_workloads(ctx)
        ctx.clock.advance(TICK_S)


def _events(api: TestClient, workload_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/workloads/{workload_id}/events")
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body["data"] if isinstance(body, dict) else body)


def test_an_idle_gpu_workload_is_warned_then_stopped_and_a_busy_one_runs_on(
    ctx: ServiceContext,
) -> None:
    with authed_client(ctx) as api:
        idle = _launch(api, ctx, gpu=1, command=["sleep", "infinity"], name="idle-notebook")
        busy = _launch(api, ctx, gpu=1, command=["python", "train.py"], name="busy-training")
        started = ctx.now()
        # Idle from the first tick; the warning comes WARN_S before the window ends.
        _ticks(ctx, WINDOW_S - WARN_S)
        assert api.get(f"/api/v1/workloads/{idle}").json()["status"] == "running"
        _ticks(ctx, TICK_S)
        warnings = [e for e in _events(api, idle) if "will be stopped at" in (e["reason"] or "")]
        assert len(warnings) == 1, _events(api, idle)
        warning = warnings[0]
        assert warning["reason"].startswith("idle for 8m"), warning
        assert "GPU utilisation at most" in warning["reason"]
        assert "below 5 %" in warning["reason"]
        assert "unless used" in warning["reason"]
        culling = api.get(f"/api/v1/workloads/{idle}/culling").json()
        assert culling["idle_culling"] is True
        assert culling["seconds_left"] == pytest.approx(WARN_S - TICK_S, abs=1), culling
        _ticks(ctx, WARN_S)
        stopped = api.get(f"/api/v1/workloads/{idle}").json()
        assert stopped["status"] == "stopped", stopped
        assert stopped["reason_code"] == "idle"
        final = _events(api, idle)[-1]
        assert final["to_status"] == "stopped"
        assert final["reason"].startswith("stopped: idle for 10m"), final
        assert "below the threshold of 5 % for the window of 10m" in final["reason"]
        assert final["details"]["threshold_pct"] == 5.0
        assert final["details"]["window_s"] == WINDOW_S
        assert 0 <= final["details"]["observed_max_pct"] < 5.0
        assert ctx.now() - started >= timedelta(seconds=WINDOW_S)
        # The busy one ran on, without a word about idleness.
        _ticks(ctx, 2 * WINDOW_S)
        assert api.get(f"/api/v1/workloads/{busy}").json()["status"] == "running"
        assert not [e for e in _events(api, busy) if "idle" in (e["reason"] or "")]
    with ctx.db.read() as session:
        audit = session.scalars(
            select(AuditEventRow).where(AuditEventRow.action == "workload.cull")
        ).all()
        assert [a.target_id for a in audit] == [idle]
        # The stopped workload's memory is gone; the running one's kept.
        kept = {row.workload_id for row in session.scalars(select(WorkloadCullingRow))}
        assert idle not in kept


def test_a_cpu_only_workload_is_culled_on_its_cpu_share(ctx: ServiceContext) -> None:
    with authed_client(ctx) as api:
        idle = _launch(api, ctx, command=["/bin/sleep", "3600"])
        busy = _launch(api, ctx, command=["stress", "--cpu", "1"])
        _ticks(ctx, WINDOW_S + TICK_S)
        assert api.get(f"/api/v1/workloads/{idle}").json()["status"] == "stopped"
        final = _events(api, idle)[-1]
        assert "CPU utilisation at most 0.0 %" in final["reason"], final
        assert api.get(f"/api/v1/workloads/{busy}").json()["status"] == "running"


def test_a_restarted_loop_keeps_the_announced_time(ctx: ServiceContext) -> None:
    """The warning time is stored: a fresh context (a restarted process) honours it."""
    with authed_client(ctx) as api:
        idle = _launch(api, ctx, gpu=1, command=["sleep", "1d"])
        _ticks(ctx, WINDOW_S - WARN_S + TICK_S)
        warned = api.get(f"/api/v1/workloads/{idle}/culling").json()
        assert warned["idle_stop_at"] is not None
    restarted = make_context(ctx.settings)
    restarted.clock = ctx.clock
    try:
        _ticks(restarted, WARN_S)
        with authed_client(restarted) as api:
            after = api.get(f"/api/v1/workloads/{idle}").json()
            assert after["status"] == "stopped", after
            stops = [e for e in _events(api, idle) if e["to_status"] == "stopped"]
            assert stops[0]["at"].startswith(warned["idle_stop_at"][:19]), (stops, warned)
    finally:
        restarted.db.dispose()


def test_max_lifetime_warns_then_stops_even_a_busy_workload(ctx: ServiceContext) -> None:
    with authed_client(ctx) as api:
        workload = _launch(api, ctx, gpu=1, command=["python", "serve.py"], max_lifetime_s=1800)
        _ticks(ctx, 1800 - WARN_S)
        assert api.get(f"/api/v1/workloads/{workload}").json()["status"] == "running"
        _ticks(ctx, TICK_S)
        warning = _events(api, workload)[-1]
        assert warning["reason"].startswith("maximum lifetime 30m (set on the workload)")
        _ticks(ctx, WARN_S)
        stopped = api.get(f"/api/v1/workloads/{workload}").json()
        assert stopped["status"] == "stopped"
        assert stopped["reason_code"] == "max_lifetime"
        assert "reached its maximum lifetime of 30m" in _events(api, workload)[-1]["reason"]


def test_a_bad_workload_is_set_aside_once_and_the_others_are_culled(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#22: a workload the loop cannot read (a command that is not text, as an older
    version could have written) is logged once however many ticks run, never stopped on
    that account, and the idle one beside it is culled on time. One workload a page, so
    the two are in pages of their own."""
    monkeypatch.setattr(culling_loop, "PAGE", 1)
    failures = record_failures(monkeypatch)
    with authed_client(ctx) as api:
        idle = _launch(api, ctx, gpu=1, command=["sleep", "infinity"])
        poisoned = _launch(api, ctx, gpu=1, command=["sleep", "infinity"])
        with ctx.db.write() as session:
            session.execute(
                update(WorkloadRow).where(WorkloadRow.id == poisoned).values(command=[1])
            )
        _ticks(ctx, WINDOW_S + TICK_S)
        assert api.get(f"/api/v1/workloads/{idle}").json()["status"] == "stopped"
        assert status_and_reason(ctx, poisoned)[0] == "running"
        assert len(failures.failures("culling", poisoned)) == 1
        assert failures.failures("culling", idle) == []


def test_a_team_that_opts_out_keeps_its_idle_workloads(ctx: ServiceContext) -> None:
    with authed_client(ctx) as api:
        team = api.post("/api/v1/teams", json={"name": "research"}).json()
        opted = api.put(f"/api/v1/teams/{team['id']}/culling", json={"mode": "off"})
        assert opted.status_code == 200, opted.text
        kept = _launch(api, ctx, gpu=1, command=["sleep", "infinity"], team_id=team["id"])
        culled = _launch(api, ctx, gpu=1, command=["sleep", "infinity"])
        _ticks(ctx, 2 * WINDOW_S)
        assert api.get(f"/api/v1/workloads/{kept}").json()["status"] == "running"
        assert not [e for e in _events(api, kept) if "idle" in (e["reason"] or "")]
        assert api.get(f"/api/v1/workloads/{kept}/culling").json()["off_by"] == "team (off)"
        assert api.get(f"/api/v1/workloads/{culled}").json()["status"] == "stopped"


def test_with_culling_off_everywhere_a_tick_observes_nothing_until_a_lifetime_is_set(
    ctx: ServiceContext,
) -> None:
    """The default (culling off, no lifetimes) costs nothing per workload: a tick looks at
    none. A workload with a lifetime of its own makes the tick look again (all of them:
    the same pass serves both)."""
    ctx.settings = ctx.settings.model_copy(update={"idle_cull_mode": "off"})
    with authed_client(ctx) as api:
        _launch(api, ctx, gpu=1, command=["sleep", "3600"])
        assert cull_workloads(ctx).looked_at == 0
        _launch(api, ctx, gpu=1, command=["python", "serve.py"], max_lifetime_s=1800)
        assert cull_workloads(ctx).looked_at == 2
        ctx.settings = ctx.settings.model_copy(update={"idle_cull_mode": "on"})
        assert cull_workloads(ctx).looked_at == 2
