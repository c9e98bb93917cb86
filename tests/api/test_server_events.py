"""GET /servers/{id}/events: a server's status history, readable by whoever may read the
fleet; an illegal status change is refused naming the field."""

from __future__ import annotations

from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _server_id(client: TestClient) -> str:
    return str(client.get("/api/v1/servers").json()["data"][0]["id"])


def test_a_status_change_is_listed_with_its_reason(client: TestClient, ctx: ServiceContext) -> None:
    server_id = _server_id(client)
    for status in ("draining", "maintenance", "online"):
        response = client.patch(f"/api/v1/servers/{server_id}", json={"status": status})
        assert response.status_code == 200, response.text
    body = client.get(f"/api/v1/servers/{server_id}/events").json()
    assert body["count"] == 3
    assert [(e["from_status"], e["to_status"]) for e in body["data"]] == [
        ("online", "draining"),
        ("draining", "maintenance"),
        ("maintenance", "online"),
    ]
    assert body["data"][0]["reason"] == "set to draining by an administrator"
    page = client.get(f"/api/v1/servers/{server_id}/events?limit=1&offset=1").json()
    assert page["count"] == 3
    assert [e["to_status"] for e in page["data"]] == ["maintenance"]
    # Readable per the policy (fleet.read: every signed-in role), not anonymously.
    user = authed_client(ctx, mint_token(ctx, add_user(ctx, "dev@example.com", "dev-pass-123")))
    assert user.get(f"/api/v1/servers/{server_id}/events").json()["count"] == 3
    anonymous = TestClient(client.app)
    assert anonymous.get(f"/api/v1/servers/{server_id}/events").status_code == 401


def test_unknown_server_is_not_found(client: TestClient) -> None:
    response = client.get("/api/v1/servers/nope/events")
    assert response.status_code == 404


def test_setting_offline_by_hand_is_refused_naming_status(client: TestClient) -> None:
    server_id = _server_id(client)
    response = client.patch(f"/api/v1/servers/{server_id}", json={"status": "offline"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["status"]
    assert client.get(f"/api/v1/servers/{server_id}/events").json()["count"] == 0
