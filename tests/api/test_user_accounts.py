"""The admins' user list: role, active or disabled, last login; disable and enable."""

from __future__ import annotations

from typing import Any

from factories.app import ADMIN_EMAIL, add_user
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _accounts(client: TestClient, **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/users", params=params)
    assert response.status_code == 200, response.text
    return {u["email"]: u for u in response.json()["data"]}


def test_last_login_and_disabled_accounts(client: TestClient, ctx: ServiceContext) -> None:
    dev = add_user(ctx, "dev@example.com", "dev-pass-123")
    add_user(ctx, "never@example.com", "never-pass-123")
    anonymous = TestClient(client.app)
    login = {"email": "dev@example.com", "password": "dev-pass-123"}
    assert anonymous.post("/api/v1/auth/login", json=login).status_code == 200
    failed = {"email": "never@example.com", "password": "wrong-password"}
    assert anonymous.post("/api/v1/auth/login", json=failed).status_code == 401

    accounts = _accounts(client)
    assert accounts["dev@example.com"]["last_login_at"] is not None
    assert accounts["never@example.com"]["last_login_at"] is None  # a failure is no login
    assert accounts[ADMIN_EMAIL]["last_login_at"] is not None  # the fixture logged in
    detail = client.get(f"/api/v1/users/{dev}").json()
    assert detail["last_login_at"] == accounts["dev@example.com"]["last_login_at"]

    assert client.patch(f"/api/v1/users/{dev}", json={"is_active": False}).status_code == 200
    assert set(_accounts(client, is_active=False)) == {"dev@example.com"}
    assert "dev@example.com" not in _accounts(client, is_active=True)
    assert anonymous.post("/api/v1/auth/login", json=login).status_code == 401
    assert client.patch(f"/api/v1/users/{dev}", json={"is_active": True}).status_code == 200
    assert client.patch(f"/api/v1/users/{dev}", json={"role": "operator"}).status_code == 200
    assert set(_accounts(client, role="operator")) == {"dev@example.com"}
    assert client.get("/api/v1/users", params={"is_active": "maybe"}).status_code == 422
