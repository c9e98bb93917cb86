"""PATCH and DELETE /clusters/{id}: rename (409 on a taken name); delete only an empty
cluster, refused with a 409 that names what remains."""

from __future__ import annotations

from typing import Any

from factories.app import settle
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _cluster(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post("/api/v1/clusters", json={"name": name, "kind": "simulated"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _server(client: TestClient, cluster_id: str, name: str) -> str:
    body = {"name": name, "cluster_id": cluster_id, "cpu": 4, "ram_gb": 8}
    response = client.post("/api/v1/servers", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_rename_a_cluster(client: TestClient) -> None:
    lab = _cluster(client, "lab")
    renamed = client.patch(f"/api/v1/clusters/{lab['id']}", json={"name": "lab-2"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "lab-2"
    assert client.get(f"/api/v1/clusters/{lab['id']}").json()["name"] == "lab-2"
    assert client.patch(f"/api/v1/clusters/{lab['id']}", json={"name": "demo"}).status_code == 409
    bad = client.patch(f"/api/v1/clusters/{lab['id']}", json={"name": "no spaces"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["name"]
    assert client.patch("/api/v1/clusters/nope", json={"name": "x"}).status_code == 404


def test_a_cluster_with_servers_or_active_work_is_not_deleted(
    client: TestClient, ctx: ServiceContext
) -> None:
    lab = _cluster(client, "lab")
    server_id = _server(client, lab["id"], "lab-1")
    refused = client.delete(f"/api/v1/clusters/{lab['id']}")
    assert refused.status_code == 409
    assert "1 server(s) ('lab-1')" in refused.json()["detail"]

    assert client.delete(f"/api/v1/servers/{server_id}").status_code == 204
    work = client.post(
        "/api/v1/workloads", json={"image": "busybox", "cluster_id": lab["id"]}
    ).json()
    settle(ctx)  # no server there: it stays pending
    refused = client.delete(f"/api/v1/clusters/{lab['id']}")
    assert refused.status_code == 409
    assert "1 active workload(s)" in refused.json()["detail"]
    assert client.get(f"/api/v1/clusters/{lab['id']}").status_code == 200

    # Once the work is finished, the cluster goes and the finished work forgets it.
    assert client.post(f"/api/v1/workloads/{work['id']}/stop").status_code == 200
    assert client.delete(f"/api/v1/clusters/{lab['id']}").status_code == 204
    assert client.get(f"/api/v1/clusters/{lab['id']}").status_code == 404
    assert client.get(f"/api/v1/workloads/{work['id']}").json()["cluster_id"] is None
    event = client.get("/api/v1/audit", params={"action": "cluster.delete"}).json()["data"][0]
    assert event["details"]["finished_workloads_detached"] == 1
    assert client.delete(f"/api/v1/clusters/{lab['id']}").status_code == 404
