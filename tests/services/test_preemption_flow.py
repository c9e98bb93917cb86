"""Preemption, backoff, simulated durations, quota and gangs through the services and API,
on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from factories.app import authed_client, settle
from factories.clock import ManualClock
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.cycle import apply_admission, plan_cycle
from gpuyard.services.workloads.lifecycle import advance_lifecycles
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.reservations import ReservationConflict


@pytest.fixture
def api(clock_ctx: ServiceContext) -> Iterator[TestClient]:
    with authed_client(clock_ctx) as client:
        yield client


def submit(api: TestClient, **body: Any) -> str:
    response = api.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def get(api: TestClient, workload_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/v1/workloads/{workload_id}").json())


def clock(ctx: ServiceContext) -> ManualClock:
    assert isinstance(ctx.clock, ManualClock)
    return ctx.clock


def test_higher_priority_preempts_and_victim_returns_after_backoff(
    api: TestClient, clock_ctx: ServiceContext
) -> None:
    ctx = clock_ctx
    fillers = [submit(api, name=f"low-{i}", gpu=8, gpu_model="H100", priority=1) for i in range(2)]
    settle(ctx)
    assert all(get(api, f)["status"] == "running" for f in fillers)

    urgent = submit(api, name="urgent", gpu=4, gpu_model="H100", priority=5)
    settle(ctx)
    assert get(api, urgent)["status"] == "running"
    victims = [get(api, f) for f in fillers if get(api, f)["status"] == "preempted"]
    assert len(victims) == 1, "exactly one 8-GPU victim frees room for 4 GPUs"
    victim = victims[0]
    assert "preempted by urgent (priority 5)" in victim["reason"]
    assert victim["preemption_count"] == 1
    assert get(api, urgent)["server_id"] not in {
        get(api, f)["server_id"] for f in fillers if get(api, f)["status"] == "running"
    }

    # No thrash: the victim does not come back into the room freed for the preemptor.
    clock(ctx).advance(5)
    advance_lifecycles(ctx)
    settle(ctx)
    assert get(api, victim["id"])["status"] == "preempted"
    clock(ctx).advance(6)  # 10 s initial backoff has passed
    advance_lifecycles(ctx)
    assert get(api, victim["id"])["status"] == "pending"
    settle(ctx)
    back = get(api, victim["id"])
    assert back["status"] == "pending"
    assert back["reason"]
    assert get(api, urgent)["status"] == "running"

    events = api.get(f"/api/v1/workloads/{victim['id']}/events").json()["data"]
    assert [e["to_status"] for e in events][-2:] == ["preempted", "pending"]


def test_equal_priority_never_preempts(api: TestClient, clock_ctx: ServiceContext) -> None:
    first = [submit(api, gpu=8, gpu_model="A100", priority=3) for _ in range(2)]
    settle(clock_ctx)
    late = submit(api, gpu=1, gpu_model="A100", priority=3)
    settle(clock_ctx)
    assert [get(api, w)["status"] for w in first] == ["running", "running"]
    assert get(api, late)["status"] == "pending"


def test_non_preemptible_work_is_never_evicted(api: TestClient, clock_ctx: ServiceContext) -> None:
    safe = [submit(api, gpu=8, gpu_model="A100", priority=1, preemptible=False) for _ in range(2)]
    settle(clock_ctx)
    urgent = submit(api, gpu=1, gpu_model="A100", priority=5)
    settle(clock_ctx)
    assert [get(api, w)["status"] for w in safe] == ["running", "running"]
    assert get(api, urgent)["status"] == "pending"


def test_simulated_duration_succeeds_and_frees_the_gpu(
    api: TestClient, clock_ctx: ServiceContext
) -> None:
    job = submit(api, gpu=1, duration_s=30)
    settle(clock_ctx)
    running = get(api, job)
    assert running["status"] == "running"
    clock(clock_ctx).advance(31)
    advance_lifecycles(clock_ctx)
    done = get(api, job)
    assert done["status"] == "succeeded"
    assert done["placements"] == []
    server = api.get(f"/api/v1/servers/{running['server_id']}").json()
    assert server["allocated"]["gpu"] == 0


def test_team_quota_keeps_extra_work_pending(api: TestClient, clock_ctx: ServiceContext) -> None:
    with clock_ctx.db.write() as session:
        session.add(TeamRow(id="ml", name="ml", quota_gpu_milli=2000))
    inside = []
    for _ in range(2):
        inside.append(submit(api, gpu=1, team_id="ml"))
        clock(clock_ctx).advance(1)  # submit order decides who is first under the quota
    over = submit(api, gpu=1, team_id="ml")
    settle(clock_ctx)
    assert [get(api, w)["status"] for w in inside] == ["running", "running"]
    waiting = get(api, over)
    assert waiting["status"] == "pending"
    assert "quota" in waiting["reason"]


def test_gang_is_all_or_nothing(api: TestClient, clock_ctx: ServiceContext) -> None:
    too_big = submit(api, gpu=8, replicas=5, gang=True)  # 40 GPUs > 32 in the cluster
    fits = submit(api, gpu=8, replicas=3, gang=True)
    settle(clock_ctx)
    assert get(api, too_big)["status"] == "pending"
    assert get(api, too_big)["placements"] == []
    placed = get(api, fits)
    assert placed["status"] == "running"
    assert len({p["server_id"] for p in placed["placements"]}) == 3
    servers = api.get("/api/v1/servers").json()["data"]
    assert sum(s["allocated"]["gpu"] for s in servers) == 24


def test_draining_server_takes_no_new_work(api: TestClient, clock_ctx: ServiceContext) -> None:
    servers = api.get("/api/v1/servers").json()["data"]
    for server in servers[1:]:
        patched = api.patch(f"/api/v1/servers/{server['id']}", json={"status": "draining"})
        assert patched.status_code == 200
        assert patched.json()["status"] == "draining"
    job = submit(api, gpu=1)
    settle(clock_ctx)
    assert get(api, job)["server_id"] == servers[0]["id"]
    assert (
        api.patch(f"/api/v1/servers/{servers[0]['id']}", json={"status": "offline"}).status_code
        == 422
    )


def test_a_victim_changed_after_the_snapshot_is_not_evicted(
    api: TestClient, clock_ctx: ServiceContext
) -> None:
    ctx = clock_ctx
    fillers = [submit(api, name=f"low-{i}", gpu=8, gpu_model="H100", priority=1) for i in range(2)]
    settle(ctx)
    urgent = submit(api, name="urgent", gpu=4, gpu_model="H100", priority=5)
    state, result = plan_cycle(ctx)  # decides to evict one filler
    (admission,) = [a for a in result.admitted if a.victims]
    victim_id = admission.victims[0].workload_id
    assert victim_id in fillers

    # Before the decision is applied, the victim's owner makes it non-preemptible.
    assert api.patch(f"/api/v1/workloads/{victim_id}", json={"preemptible": False}).is_success
    versions = {v.workload_id: state.seen[v.workload_id].version for v in admission.victims}
    with pytest.raises(ReservationConflict, match="changed since the snapshot"):
        apply_admission(ctx, admission, state.seen[urgent], state.docker_servers, versions)

    assert get(api, victim_id)["status"] == "running"
    assert get(api, urgent)["status"] == "pending"
    settle(ctx)  # the next cycle sees the change: the other filler is the victim
    assert get(api, victim_id)["status"] == "running"
    assert get(api, urgent)["status"] == "running"


def test_a_gang_preempts_on_two_servers_in_one_commit(
    api: TestClient, clock_ctx: ServiceContext
) -> None:
    ctx = clock_ctx
    # Both H100 servers full of low-priority work; a gang of two 8-GPU replicas fits on
    # neither alone, so it evicts one filler on each and lands on both at once.
    fillers = [submit(api, name=f"low-{i}", gpu=8, gpu_model="H100", priority=1) for i in range(2)]
    settle(ctx)
    assert all(get(api, f)["status"] == "running" for f in fillers)

    gang = submit(api, name="gang", gpu=8, gpu_model="H100", priority=5, replicas=2, gang=True)
    settle(ctx)

    placed = get(api, gang)
    assert placed["status"] == "running", placed["reason"]
    assert len({p["server_id"] for p in placed["placements"]}) == 2
    for filler in fillers:
        victim = get(api, filler)
        assert victim["status"] == "preempted"
        assert "preempted by gang (priority 5)" in victim["reason"]
