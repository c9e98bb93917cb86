"""A newcomer's tour through the API: servers, launch, placement, resize, stop, delete,
and everything still there after a restart."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from factories.app import authed_client, make_context, make_settings, settle
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"image": "pytorch/pytorch:2.4", "cpu": 4, "ram_gb": 32, "gpu": 1, **body}
    response = client.post("/api/v1/workloads", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def fetch(client: TestClient, workload_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/workloads/{workload_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def server_by_id(client: TestClient, server_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/servers/{server_id}")
    assert response.status_code == 200
    return dict(response.json())


def test_demo_cluster_lists_servers_with_their_gpus(client: TestClient) -> None:
    body = client.get("/api/v1/servers").json()
    assert body["count"] == 4
    models = {g["model"] for s in body["data"] for g in s["gpus"]}
    assert models == {"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"}
    for server in body["data"]:
        assert [g["index"] for g in server["gpus"]] == list(range(8))
        assert server["capacity"] == {"cpu": 64, "ram_gb": 512, "storage_gb": 2048, "gpu": 8}
        assert server["allocated"]["gpu"] == 0


def test_workload_is_placed_with_server_and_gpu_indices(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create(client, name="train-1", gpu=2, gpu_model="H100", priority=4)
    assert created["status"] == "pending"
    assert created["server_id"] is None

    settle(ctx)
    placed = fetch(client, created["id"])
    assert placed["status"] == "running", placed["reason"]
    assert placed["server_name"].startswith("h100-node")
    assert len(placed["gpu_indices"]) == 2
    assert len(set(placed["gpu_indices"])) == 2
    server = server_by_id(client, placed["server_id"])
    assert server["allocated"] == {"cpu": 4, "ram_gb": 32, "storage_gb": 0, "gpu": 2}
    taken = {g["index"]: g["allocated_milli"] for g in server["gpus"] if g["allocated_milli"]}
    assert taken == {i: 1000 for i in placed["gpu_indices"]}

    events = client.get(f"/api/v1/workloads/{created['id']}/events").json()["data"]
    assert [e["to_status"] for e in events] == ["pending", "scheduled", "starting", "running"]


def test_resize_in_place_keeps_the_server_and_updates_allocation(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create(client, gpu=1, cpu=2, ram_gb=8)
    settle(ctx)
    before = fetch(client, created["id"])

    response = client.patch(f"/api/v1/workloads/{created['id']}", json={"cpu": 8, "gpu": 2})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["status"] == "running"
    assert after["server_id"] == before["server_id"]
    assert after["cpu"] == 8
    assert len(after["gpu_indices"]) == 2
    assert before["gpu_indices"][0] in after["gpu_indices"]
    server = server_by_id(client, after["server_id"])
    assert server["allocated"]["cpu"] == 8
    assert server["allocated"]["gpu"] == 2


def test_resize_that_no_longer_fits_requeues_with_a_reason(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create(client, gpu=1, cpu=2, ram_gb=8)
    settle(ctx)
    placed = fetch(client, created["id"])
    path = f"/api/v1/workloads/{created['id']}"

    # Beyond every server: refused (issue 21), not evicted into a queue it would never leave.
    refused = client.patch(path, json={"cpu": 100})
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["cpu"]
    assert fetch(client, created["id"])["status"] == "running"

    # A neighbour pinned to its server leaves it no room to grow in place.
    neighbour = {"gpuyard.io/server-name": placed["server_name"]}
    create(client, name="neighbour", cpu=60, ram_gb=1, node_selector=neighbour)
    settle(ctx)
    response = client.patch(path, json={"cpu": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert "no longer fits" in body["reason"]
    assert server_by_id(client, placed["server_id"])["allocated"]["cpu"] == 60

    settle(ctx)  # it fits another server, emptied or not
    moved = fetch(client, created["id"])
    assert moved["status"] == "running"
    assert moved["server_id"] != placed["server_id"]
    assert moved["cpu"] == 10


def test_stop_releases_and_delete_removes(client: TestClient, ctx: ServiceContext) -> None:
    created = create(client, gpu=4)
    settle(ctx)
    server_id = fetch(client, created["id"])["server_id"]

    stopped = client.post(f"/api/v1/workloads/{created['id']}/stop")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert server_by_id(client, server_id)["allocated"]["gpu"] == 0
    again = client.post(f"/api/v1/workloads/{created['id']}/stop")
    assert again.status_code == 409

    assert client.delete(f"/api/v1/workloads/{created['id']}").status_code == 204
    assert client.get(f"/api/v1/workloads/{created['id']}").status_code == 404


def test_delete_of_a_running_workload_frees_its_gpus(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create(client, gpu=8, gpu_model="A100")
    settle(ctx)
    server_id = fetch(client, created["id"])["server_id"]
    assert server_by_id(client, server_id)["allocated"]["gpu"] == 8
    assert client.delete(f"/api/v1/workloads/{created['id']}").status_code == 204
    assert server_by_id(client, server_id)["allocated"]["gpu"] == 0


def test_list_filters_by_status_and_pages(client: TestClient, ctx: ServiceContext) -> None:
    ids = [create(client, name=f"w-{i}", gpu=0, cpu=1, ram_gb=1)["id"] for i in range(5)]
    # A model no server has is refused at submit (issue 21), naming what exists...
    refused = client.post(
        "/api/v1/workloads", json={"image": "busybox", "gpu": 8, "gpu_model": "B200"}
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["gpu_model"]
    assert "H100" in refused.json()["errors"][0]["message"]
    # ...while a gang each of whose replicas fits an empty server waits.
    create(client, name="too-big", cpu=64, replicas=5, gang=True)
    settle(ctx)
    running = client.get("/api/v1/workloads", params={"status": "running"}).json()
    assert running["count"] == 5
    assert {w["id"] for w in running["data"]} == set(ids)
    pending = client.get("/api/v1/workloads", params={"status": "pending"}).json()
    assert [w["name"] for w in pending["data"]] == ["too-big"]
    assert pending["data"][0]["reason"]
    page = client.get("/api/v1/workloads", params={"limit": 2, "offset": 1}).json()
    assert page["count"] == 6
    assert len(page["data"]) == 2


def test_queue_lists_pending_in_scheduling_order_with_reasons(
    client: TestClient, ctx: ServiceContext
) -> None:
    create(client, name="fill-h100", gpu=8, gpu_model="H100", preemptible=False)
    create(client, name="fill-h100-b", gpu=8, gpu_model="H100", preemptible=False)
    settle(ctx)
    low = create(client, name="low", gpu=4, gpu_model="H100", priority=1)
    high = create(client, name="high", gpu=4, gpu_model="H100", priority=5)
    queue = client.get("/api/v1/queue").json()
    assert [e["workload"]["id"] for e in queue["data"]] == [high["id"], low["id"]]
    assert [e["position"] for e in queue["data"]] == [1, 2]
    assert all(e["reason"] for e in queue["data"])


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None)
    ctx = make_context(settings)
    with authed_client(ctx) as client:
        created = create(client, name="persist-me", gpu=2, priority=5)
        settle(ctx)
        before = fetch(client, created["id"])
        servers_before = client.get("/api/v1/servers").json()
    ctx.db.dispose()

    restarted = make_context(settings)  # same data dir: migrations no-op, no second demo
    with authed_client(restarted) as client:
        after = fetch(client, created["id"])
        assert after == before
        assert client.get("/api/v1/servers").json() == servers_before
    restarted.db.dispose()


def test_the_queue_estimates_when_each_waiting_workload_starts(
    client: TestClient, ctx: ServiceContext
) -> None:
    # Both H100 servers filled: one by work that declared an hour, one by work that runs
    # until stopped. The first waiting workload (4 GPUs, 30 min) starts when the hour
    # ends, and the second fits beside it then.
    hour = create(client, name="hour", gpu=8, gpu_model="H100", duration_s=3600, preemptible=False)
    create(client, name="open", gpu=8, gpu_model="H100", preemptible=False)
    settle(ctx)
    started = datetime.fromisoformat(fetch(client, hour["id"])["started_at"])
    first = create(client, name="first", gpu=4, gpu_model="H100", priority=5, duration_s=1800)
    second = create(client, name="second", gpu=4, gpu_model="H100", priority=4)
    blocked = create(client, name="blocked", gpu=8, gpu_model="H100", priority=3)

    queue = client.get("/api/v1/queue").json()

    by_name = {e["workload"]["name"]: e for e in queue["data"]}
    assert set(by_name) == {"first", "second", "blocked"}
    expected = started + timedelta(seconds=3600)
    for name in ("first", "second"):
        estimate = datetime.fromisoformat(by_name[name]["estimated_start"])
        assert abs((estimate - expected).total_seconds()) < 1, (name, estimate, expected)
    # 8 H100s free only when both "second" (no declared end) and "open" end: never known.
    assert by_name["blocked"]["estimated_start"] is None
    assert {first["id"], second["id"], blocked["id"]} == {
        e["workload"]["id"] for e in queue["data"]
    }
