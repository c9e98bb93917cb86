"""The queue's job view: every workload in one registry (queued, started, finished,
failed, deferred with the time it comes back), its retries counted from its re-queues,
only the caller's own workloads, through GET /queue and GET /queue/{id}; on both
databases, without Redis (the database is the truth)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from factories.app import add_user, authed_client, login, settle
from factories.clock import ManualClock
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import fail_workload
from gpuyard.services.workloads.lifecycle import advance_lifecycles


@pytest.fixture
def api(clock_ctx: ServiceContext) -> Iterator[TestClient]:
    with authed_client(clock_ctx) as client:
        yield client


def _submit(api: TestClient, **body: Any) -> str:
    response = api.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _job(api: TestClient, workload_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/queue/{workload_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _clock(ctx: ServiceContext) -> ManualClock:
    assert isinstance(ctx.clock, ManualClock)
    return ctx.clock


def test_registries_deferral_and_retries(api: TestClient, clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    fillers = [_submit(api, name=f"low-{i}", gpu=8, gpu_model="H100", priority=1) for i in range(2)]
    settle(ctx)
    assert {_job(api, f)["registry"] for f in fillers} == {"started"}
    urgent = _submit(api, name="urgent", gpu=4, gpu_model="H100", priority=5)
    settle(ctx)
    [victim] = [f for f in fillers if _job(api, f)["status"] == "preempted"]
    job = _job(api, victim)
    assert job["registry"] == "deferred"
    assert job["retries"] == 0  # evicted, not yet back in the queue
    back_at = datetime.fromisoformat(job["deferred_until"])
    assert back_at > ctx.now()
    assert back_at - ctx.now() <= timedelta(minutes=10)
    queue = api.get("/api/v1/queue").json()
    assert [d["workload_id"] for d in queue["deferred"]] == [victim]
    assert queue["deferred"][0]["deferred_until"] == job["deferred_until"]
    assert queue["registries"] == {
        "queued": 0,
        "started": 2,
        "finished": 0,
        "failed": 0,
        "deferred": 1,
    }
    # The backoff ends: the victim queues again, its first retry; it waits (no room).
    _clock(ctx).advance((back_at - ctx.now()).total_seconds() + 1)
    advance_lifecycles(ctx)
    settle(ctx)
    job = _job(api, victim)
    assert (job["registry"], job["retries"], job["deferred_until"]) == ("queued", 1, None)
    queue = api.get("/api/v1/queue").json()
    assert [(e["workload"]["id"], e["retries"]) for e in queue["data"]] == [(victim, 1)]
    assert queue["deferred"] == []
    # Stopped and failed work lands in finished and failed.
    assert api.post(f"/api/v1/workloads/{urgent}/stop").status_code == 200
    assert fail_workload(ctx, victim, "given up", loop="test")
    counts = api.get("/api/v1/queue").json()["registries"]
    assert (counts["finished"], counts["failed"], counts["queued"]) == (1, 1, 0)
    assert _job(api, urgent)["registry"] == "finished"
    assert _job(api, victim) | {"deferred_until": None} == _job(api, victim)
    assert _job(api, victim)["registry"] == "failed"
    assert _job(api, victim)["retries"] == 1  # kept once it ended


def test_the_job_view_shows_only_the_callers_own_work(
    api: TestClient, clock_ctx: ServiceContext
) -> None:
    theirs = _submit(api, name="admins")
    add_user(clock_ctx, "ada@example.com", "another-long-password")
    with authed_client(clock_ctx, login(api, "ada@example.com", "another-long-password")) as ada:
        assert ada.get(f"/api/v1/queue/{theirs}").status_code == 404
        mine = ada.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1}).json()["id"]
        queue = ada.get("/api/v1/queue").json()
        assert queue["registries"]["queued"] == 1
        assert sum(queue["registries"].values()) == 1
        assert ada.get(f"/api/v1/queue/{mine}").json()["registry"] == "queued"
    assert api.get("/api/v1/queue").json()["registries"]["queued"] == 2  # an admin sees all
    assert api.get("/api/v1/queue/" + "0" * 32).status_code == 404
