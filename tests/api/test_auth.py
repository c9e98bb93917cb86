"""Login errors reveal nothing; users see only their own. (Every route against every role:
test_permissions.py.)"""

from __future__ import annotations

import pytest
from factories.app import ADMIN_EMAIL, add_user, authed_client, login
from fastapi.testclient import TestClient

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext


def test_garbage_token_is_refused(ctx: ServiceContext) -> None:
    with authed_client(ctx, token="not-a-jwt") as client:
        assert client.get("/api/v1/servers").status_code == 401


def test_unknown_user_and_wrong_password_get_the_same_answer(ctx: ServiceContext) -> None:
    client = TestClient(create_app(ctx))
    wrong = client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "nope"})
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.com", "password": "nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_me_returns_the_logged_in_user(client: TestClient) -> None:
    me = client.get("/api/v1/auth/me").json()
    assert me["email"] == ADMIN_EMAIL
    assert me["role"] == "admin"
    assert "password_hash" not in me


def test_a_user_sees_only_their_own_workloads(client: TestClient, ctx: ServiceContext) -> None:
    admins = client.post("/api/v1/workloads", json={"image": "busybox"}).json()
    add_user(ctx, "dev@example.com", "dev-password-1")
    with TestClient(create_app(ctx)) as anon:
        token = login(anon, "dev@example.com", "dev-password-1")
    with authed_client(ctx, token) as dev:
        mine = dev.post("/api/v1/workloads", json={"image": "busybox"}).json()
        listed = dev.get("/api/v1/workloads").json()
        assert [w["id"] for w in listed["data"]] == [mine["id"]]
        assert dev.get(f"/api/v1/workloads/{admins['id']}").status_code == 404
        assert dev.delete(f"/api/v1/workloads/{admins['id']}").status_code == 404
        assert dev.post(f"/api/v1/workloads/{admins['id']}/stop").status_code == 404
        # Fleet changes are for admins and operators.
        cluster = dev.post("/api/v1/clusters", json={"name": "mine", "kind": "simulated"})
        assert cluster.status_code == 403
    assert client.get(f"/api/v1/workloads/{mine['id']}").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_are_open(ctx: ServiceContext, path: str) -> None:
    response = TestClient(create_app(ctx)).get(path)
    assert response.status_code == 200
    assert response.json()["status"] in {"ok", "ready"}


def test_api_docs_are_served_without_a_cdn(ctx: ServiceContext) -> None:
    client = TestClient(create_app(ctx))
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.text
    script = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert client.get("/api/openapi.json").json()["info"]["title"] == "gpuyard"
