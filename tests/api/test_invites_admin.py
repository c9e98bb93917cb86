"""GET /invites (pending, used, expired; admins) and DELETE /invites/{id} (revoke an
unused one: its code stops working; a used one is a 409)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from factories.app import ADMIN_EMAIL, authed_client, mint_token, user_id_of
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _invite(client: TestClient, email: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/invites", json={"email": email, "role": "user", **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _register(client: TestClient, email: str, code: str) -> int:
    body = {"email": email, "password": "long-enough-1", "invite_code": code}
    return client.post("/api/v1/auth/register", json=body).status_code


def _statuses(client: TestClient, **params: str) -> dict[str, str]:
    response = client.get("/api/v1/invites", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return {i["email"]: i["status"] for i in body["data"]}


def test_invites_are_listed_pending_used_or_expired(
    client: TestClient, ctx: ServiceContext
) -> None:
    used = _invite(client, "used@example.com")
    _invite(client, "pending@example.com")
    _invite(client, "soon@example.com", expires_in_hours=1)
    assert _register(TestClient(client.app), "used@example.com", used["code"]) == 201
    listed = client.get("/api/v1/invites").json()["data"]
    assert all("code" not in i for i in listed)  # shown once, at creation
    assert next(i for i in listed if i["email"] == "used@example.com")["used_by"] is not None

    later = ctx.now() + timedelta(hours=2)
    ctx.clock = lambda: later
    admin = authed_client(ctx, mint_token(ctx, user_id_of(ctx, ADMIN_EMAIL)))
    assert _statuses(admin) == {
        "used@example.com": "used",
        "pending@example.com": "pending",
        "soon@example.com": "expired",
    }
    assert _statuses(admin, status="expired") == {"soon@example.com": "expired"}
    assert _statuses(admin, status="pending") == {"pending@example.com": "pending"}
    assert _statuses(admin, status="used") == {"used@example.com": "used"}
    assert admin.get("/api/v1/invites", params={"status": "lost"}).status_code == 422


def test_a_revoked_code_stops_working_and_a_used_one_cannot_be_revoked(
    client: TestClient,
) -> None:
    revoked = _invite(client, "revoked@example.com")
    used = _invite(client, "used@example.com")
    assert _register(TestClient(client.app), "used@example.com", used["code"]) == 201

    assert client.delete(f"/api/v1/invites/{revoked['id']}").status_code == 204
    assert _register(TestClient(client.app), "revoked@example.com", revoked["code"]) == 422
    assert client.delete(f"/api/v1/invites/{revoked['id']}").status_code == 404
    refused = client.delete(f"/api/v1/invites/{used['id']}")
    assert refused.status_code == 409
    assert "already used" in refused.json()["detail"]
    assert "used@example.com" in _statuses(client)
    events = client.get("/api/v1/audit", params={"action": "invite.revoke"}).json()["data"]
    assert [(e["target_id"], e["details"]["status"]) for e in events] == [
        (revoked["id"], "pending")
    ]
