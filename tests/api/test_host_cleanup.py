"""POST /servers/{id}/cleanup on simulated and kubernetes servers: a simulated server has
honestly nothing to clean (a real run is still recorded as a server event), a kubernetes
one is refused with a 409; only admins and operators may ask, bad bodies are refused
naming the field and write nothing. (Docker servers: tests/services/test_host_cleanup_docker.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient
from kube.conftest import fake_apiserver, kubeconfig  # noqa: F401 (fixtures)
from kube.fake_apiserver import FakeApiServer

from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.kube_nodes import sync_kube_nodes


def _server_id(client: TestClient) -> str:
    return str(client.get("/api/v1/servers").json()["data"][0]["id"])


def _events(client: TestClient, server_id: str) -> list[dict[str, object]]:
    body = client.get(f"/api/v1/servers/{server_id}/events").json()
    return list(body["data"])


def test_a_simulated_server_has_nothing_to_clean(client: TestClient) -> None:
    server_id = _server_id(client)
    response = client.post(f"/api/v1/servers/{server_id}/cleanup", json={"dry_run": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True
    assert body["items"] == []
    assert body["total_bytes"] == 0
    assert "nothing to clean" in body["note"]
    assert _events(client, server_id) == []  # a dry run changes nothing and records nothing

    response = client.post(f"/api/v1/servers/{server_id}/cleanup", json={"dry_run": False})
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is False
    [event] = _events(client, server_id)
    assert event["from_status"] == event["to_status"] == "online"
    assert event["reason"] == "cleanup found nothing to remove"
    assert event["details"] == {
        "cleanup": {
            "removed": 0,
            "failed": 0,
            "skipped": 0,
            "freed_bytes": 0,
            "items": [],
            "more_items": 0,
        }
    }
    audit = client.get("/api/v1/audit", params={"action": "server.cleanup"}).json()["data"]
    assert [a["target_id"] for a in audit if a["action"] == "server.cleanup"] == [server_id]


def test_a_dry_run_is_the_default(client: TestClient) -> None:
    server_id = _server_id(client)
    response = client.post(f"/api/v1/servers/{server_id}/cleanup", json={})
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is True
    assert _events(client, server_id) == []


def test_only_admins_and_operators_may_clean(client: TestClient, ctx: ServiceContext) -> None:
    server_id = _server_id(client)
    path = f"/api/v1/servers/{server_id}/cleanup"
    user = authed_client(ctx, mint_token(ctx, add_user(ctx, "dev@example.com", "dev-pass-123")))
    assert user.post(path, json={"dry_run": False}).status_code == 403
    operator_id = add_user(ctx, "ops@example.com", "ops-pass-123", role="operator")
    operator = authed_client(ctx, mint_token(ctx, operator_id))
    assert operator.post(path, json={"dry_run": True}).status_code == 200
    assert TestClient(client.app).post(path, json={"dry_run": True}).status_code == 401
    assert _events(client, server_id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dry_run": "yes"}, "dry_run"),
        ({"dry_run": 1}, "dry_run"),
        ({"retention_hours": -1}, "retention_hours"),
        ({"retention_hours": 1e9}, "retention_hours"),
        ({"retention_hours": "soon"}, "retention_hours"),
        ({"dry_run": False, "force": True}, "force"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    server_id = _server_id(client)
    response = client.post(f"/api/v1/servers/{server_id}/cleanup", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"].split(".")[-1] for e in response.json()["errors"]]
    assert _events(client, server_id) == []


def test_an_unknown_server_is_not_found(client: TestClient) -> None:
    response = client.post("/api/v1/servers/nope/cleanup", json={"dry_run": True})
    assert response.status_code == 404


def test_a_kubernetes_server_is_refused_with_a_conflict(
    client: TestClient,
    ctx: ServiceContext,
    kubeconfig: Path,  # noqa: F811
    fake_apiserver: FakeApiServer,  # noqa: F811
) -> None:
    body = {"name": "k8s", "kind": "kubernetes", "kubeconfig": kubeconfig.read_text()}
    response = client.post("/api/v1/clusters", json=body)
    assert response.status_code == 201, response.text
    fake_apiserver.add_node("gpu-node-1", gpus=2)
    try:
        sync_kube_nodes(ctx)
        servers = client.get("/api/v1/servers").json()["data"]
        node = next(s for s in servers if s["name"] == "gpu-node-1")
        response = client.post(f"/api/v1/servers/{node['id']}/cleanup", json={"dry_run": True})
        assert response.status_code == 409, response.text
        assert "kubernetes" in response.json()["detail"]
        assert _events(client, node["id"]) == []
    finally:
        ctx.kube_clients.close()
