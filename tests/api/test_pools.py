"""Warm pools through the API, on the simulated demo cluster (SQLite and PostgreSQL):
specs, fill, claim on launch, resize, release, reinitialise, delete, permissions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from factories.app import add_user, authed_client, mint_token, settle
from fastapi.testclient import TestClient

from gpuyard.domain.pools import POOL_OWNER_ID, SERVER_NAME_SELECTOR
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.tending import tend_pools

IMAGE = "nginx:1.27"


def demo_cluster_id(client: TestClient) -> str:
    clusters = client.get("/api/v1/clusters").json()["data"]
    return str(clusters[0]["id"])


def create_pool(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {
        "name": "nginx-warm",
        "image_type": "nginx",
        "image": IMAGE,
        "cluster_id": demo_cluster_id(client),
        "target_size": 3,
        "port_min": 31000,
        "port_max": 31099,
        "container_port": 80,
        "cpu": 0.5,
        "ram_gb": 0.5,
        **body,
    }
    response = client.post("/api/v1/pools", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def fill(ctx: ServiceContext) -> None:
    tend_pools(ctx)
    settle(ctx)


def pool(client: TestClient, pool_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/pools/{pool_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def launch(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"image": IMAGE, "cpu": 0.5, "ram_gb": 0.5, **body}
    response = client.post("/api/v1/workloads", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_pool_fills_to_its_target_with_warm_containers(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create_pool(client)
    assert created["available"] == 0
    assert created["members"] == []
    fill(ctx)
    body = pool(client, created["id"])
    assert body["available"] == 3, body
    assert sorted(m["pool_index"] for m in body["members"]) == [0, 1, 2]
    for member in body["members"]:
        assert member["state"] == "available"
        assert member["status"] == "running"
        assert member["container_name"].startswith(f"pool_nginx_{member['pool_index']}_")
    tend_pools(ctx)  # at target: nothing more
    assert len(pool(client, created["id"])["members"]) == 3


def test_a_matching_launch_takes_a_warm_container_and_the_pool_refills(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create_pool(client, target_size=2)
    fill(ctx)
    user_id = add_user(ctx, "ann@example.com", "pw-ann-123456")
    ann = authed_client(ctx, mint_token(ctx, user_id))
    taken = launch(ann, name="my-site")
    assert taken["from_pool"] is True
    assert taken["status"] == "running"
    assert taken["owner_id"] == user_id
    assert taken["name"] == "my-site"
    assert taken["priority"] == 3
    assert ann.get(f"/api/v1/workloads/{taken['id']}").json()["from_pool"] is True
    events = ann.get(f"/api/v1/workloads/{taken['id']}/events").json()["data"]
    assert any("claimed from pool" in (e["reason"] or "") for e in events)

    other = launch(ann, cpu=1)  # other resources: a cold start
    assert other["from_pool"] is False
    assert other["status"] == "pending"

    body = pool(client, created["id"])
    assert body["assigned"] == 1
    assert body["available"] == 1
    fill(ctx)
    body = pool(client, created["id"])
    assert body["available"] == 2
    assert body["assigned"] == 1
    assert len({m["pool_index"] for m in body["members"]}) == 3


def test_concurrent_launches_never_share_a_warm_container(
    client: TestClient, ctx: ServiceContext
) -> None:
    create_pool(client, target_size=5)
    fill(ctx)
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda _i: launch(client), range(20)))
    warm = [a for a in answers if a["from_pool"]]
    assert len(warm) == 5
    assert len({a["id"] for a in warm}) == 5
    assert all(a["status"] == "running" for a in warm)
    assert all(a["status"] == "pending" for a in answers if not a["from_pool"])


def test_resize_release_reinitialise_delete(client: TestClient, ctx: ServiceContext) -> None:
    created = create_pool(client, target_size=2)
    pool_id = created["id"]
    fill(ctx)
    grown = client.patch(f"/api/v1/pools/{pool_id}", json={"target_size": 4})
    assert grown.status_code == 200, grown.text
    fill(ctx)
    assert pool(client, pool_id)["available"] == 4
    client.patch(f"/api/v1/pools/{pool_id}", json={"target_size": 1})
    fill(ctx)
    assert pool(client, pool_id)["available"] == 1

    taken = launch(client)
    assert taken["from_pool"]
    released = client.post(f"/api/v1/pools/{pool_id}/members/{taken['id']}/release")
    assert released.status_code == 200, released.text
    # The user's workload stops; its container is never handed to another launch (its
    # files and filesystem hold that user's data).
    back = client.get(f"/api/v1/workloads/{taken['id']}").json()
    assert back["status"] == "stopped"
    assert "released back to pool" in back["reason"]
    again = client.post(f"/api/v1/pools/{pool_id}/members/{taken['id']}/release")
    assert again.status_code == 409
    fill(ctx)
    status = pool(client, pool_id)
    assert status["available"] == 1
    assert taken["id"] not in {m["workload_id"] for m in status["members"]}

    before = {m["workload_id"] for m in pool(client, pool_id)["members"]}
    assert client.post(f"/api/v1/pools/{pool_id}/reinitialise").status_code == 200
    fill(ctx)
    after = {m["workload_id"] for m in pool(client, pool_id)["members"]}
    assert after
    assert not (after & before)

    assert client.delete(f"/api/v1/pools/{pool_id}").status_code == 204
    assert client.get(f"/api/v1/pools/{pool_id}").status_code == 404
    statuses = {client.get(f"/api/v1/workloads/{w}").json()["status"] for w in after}
    assert statuses == {"stopped"}


def test_user_work_preempts_warm_containers_which_are_not_requeued(
    client: TestClient, ctx: ServiceContext
) -> None:
    server = client.get("/api/v1/servers").json()["data"][0]  # 64 cores, 512 GB
    created = create_pool(
        client, cluster_id=None, server_id=server["id"], target_size=2, cpu=16, ram_gb=128
    )
    fill(ctx)
    members = pool(client, created["id"])["members"]
    assert [m["server_id"] for m in members] == [server["id"]] * 2
    assert all(m["status"] == "running" for m in members)
    # 48 cores on that server at the lowest user priority: one warm container must go.
    big = launch(
        client,
        image="busy:1",
        cpu=48,
        ram_gb=256,
        priority=1,
        node_selector={SERVER_NAME_SELECTOR: server["name"]},
    )
    settle(ctx)
    assert client.get(f"/api/v1/workloads/{big['id']}").json()["status"] == "running"
    statuses = sorted(
        client.get(f"/api/v1/workloads/{m['workload_id']}").json()["status"] for m in members
    )
    assert statuses == ["running", "stopped"]
    victim = next(
        m["workload_id"]
        for m in members
        if client.get(f"/api/v1/workloads/{m['workload_id']}").json()["status"] == "stopped"
    )
    events = client.get(f"/api/v1/workloads/{victim}/events").json()["data"]
    assert [e["to_status"] for e in events][-2:] == ["preempted", "stopped"]
    # The pool queues a replacement, which waits: it may evict no one (priority 0).
    fill(ctx)
    body = pool(client, created["id"])
    assert body["available"] == 1
    assert body["warming"] == 1
    assert client.get(f"/api/v1/workloads/{big['id']}").json()["status"] == "running"
    assert client.get(f"/api/v1/workloads/{victim}").json()["status"] == "stopped"


def test_pools_need_pool_manage_and_refuse_bad_specs(
    client: TestClient, ctx: ServiceContext
) -> None:
    user_id = add_user(ctx, "bob@example.com", "pw-bob-123456")
    bob = authed_client(ctx, mint_token(ctx, user_id))
    assert bob.get("/api/v1/pools").status_code == 403
    refused = bob.post(
        "/api/v1/pools",
        json={"name": "x", "image_type": "nginx", "image": IMAGE, "port_min": 1, "port_max": 2},
    )
    assert refused.status_code == 403
    both = client.post(
        "/api/v1/pools",
        json={
            "name": "x",
            "image_type": "nginx",
            "image": IMAGE,
            "port_min": 31000,
            "port_max": 31010,
        },
    )
    assert both.status_code == 422
    assert any(e["field"] == "server_id" for e in both.json()["errors"])
    reversed_range = create_pool_response(client, port_min=31010, port_max=31000)
    assert reversed_range.status_code == 422
    assert client.get("/api/v1/pools").json()["count"] == 0


def create_pool_response(client: TestClient, **body: Any) -> Any:
    payload = {
        "name": "p",
        "image_type": "nginx",
        "image": IMAGE,
        "cluster_id": demo_cluster_id(client),
        "port_min": 31000,
        "port_max": 31099,
        **body,
    }
    return client.post("/api/v1/pools", json=payload)


def test_a_pool_goes_with_its_server_or_cluster(client: TestClient, ctx: ServiceContext) -> None:
    server = client.get("/api/v1/servers").json()["data"][0]
    on_server = create_pool(client, cluster_id=None, server_id=server["id"], target_size=1)
    fill(ctx)
    busy = client.delete(f"/api/v1/servers/{server['id']}")
    assert busy.status_code == 409, busy.text  # its warm container runs there
    assert client.delete(f"/api/v1/pools/{on_server['id']}").status_code == 204
    settle(ctx)
    assert client.delete(f"/api/v1/servers/{server['id']}").status_code == 204

    cluster = client.post("/api/v1/clusters", json={"name": "empty", "kind": "simulated"})
    assert cluster.status_code == 201, cluster.text
    in_cluster = create_pool(client, name="idle", cluster_id=cluster.json()["id"], target_size=0)
    gone = client.delete(f"/api/v1/clusters/{cluster.json()['id']}")
    assert gone.status_code == 204, gone.text
    assert client.get(f"/api/v1/pools/{in_cluster['id']}").status_code == 404


def test_the_pool_owner_is_no_account(client: TestClient, ctx: ServiceContext) -> None:
    create_pool(client, target_size=1)
    fill(ctx)  # the pool loop made the built-in owner
    assert client.get(f"/api/v1/users/{POOL_OWNER_ID}").status_code == 404
    patched = client.patch(
        f"/api/v1/users/{POOL_OWNER_ID}", json={"is_active": True, "password": "x" * 16}
    )
    assert patched.status_code == 404
    assert client.delete(f"/api/v1/users/{POOL_OWNER_ID}").status_code == 404
    listed = client.get("/api/v1/users").json()
    assert POOL_OWNER_ID not in {u["id"] for u in listed["data"]}
    forged = authed_client(ctx, mint_token(ctx, POOL_OWNER_ID))
    assert forged.get("/api/v1/auth/me").status_code == 401


def test_a_patch_keeps_the_port_range_large_enough_for_the_target(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = create_pool(client, port_min=31000, port_max=31009, target_size=3)
    bigger = client.patch(f"/api/v1/pools/{created['id']}", json={"target_size": 11})
    assert bigger.status_code == 422, bigger.text
    assert [e["field"] for e in bigger.json()["errors"]] == ["target_size"]
    narrower = client.patch(f"/api/v1/pools/{created['id']}", json={"port_max": 31001})
    assert narrower.status_code == 422, narrower.text
    assert [e["field"] for e in narrower.json()["errors"]] == ["port_max"]
    unchanged = pool(client, created["id"])
    assert (unchanged["target_size"], unchanged["port_max"]) == (3, 31009)  # nothing written
    fits = client.patch(f"/api/v1/pools/{created['id']}", json={"target_size": 10})
    assert fits.status_code == 200, fits.text
    assert fits.json()["target_size"] == 10
