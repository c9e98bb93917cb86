"""The audit log over HTTP: one event per successful change, written in the change's own
transaction (a refused change leaves none), filters, and one JSON log line per event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories.app import ADMIN_EMAIL, add_user, authed_client, mint_token, sqlite_only
from fastapi.testclient import TestClient

from gpuyard.log import configure_logging
from gpuyard.services.context import ServiceContext


def _count(client: TestClient) -> int:
    return int(client.get("/api/v1/audit", params={"limit": 1}).json()["count"])


def _last(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/api/v1/audit", params={"limit": 1}).json()["data"][0])


def test_each_change_writes_one_event_and_a_refused_change_none(
    client: TestClient, ctx: ServiceContext
) -> None:
    cluster_id = client.get("/api/v1/clusters").json()["data"][0]["id"]
    steps: list[tuple[str, str, dict[str, Any] | None, str]] = [
        (
            "POST",
            "/api/v1/workloads",
            {"image": "busybox", "env": {"TOKEN": "s3cret"}},
            "workload.create",
        ),
        (
            "POST",
            "/api/v1/servers",
            {"name": "s1", "cluster_id": cluster_id, "cpu": 8, "ram_gb": 32},
            "server.create",
        ),
        ("POST", "/api/v1/teams", {"name": "t1"}, "team.create"),
        ("POST", "/api/v1/tokens", {"name": "ci"}, "token.create"),
        (
            "POST",
            "/api/v1/users",
            {"email": "u@example.com", "password": "user-pass-1"},
            "user.create",
        ),
        ("POST", "/api/v1/clusters", {"name": "c2", "kind": "simulated"}, "cluster.create"),
    ]
    created: dict[str, str] = {}
    for method, path, body, action in steps:
        before = _count(client)
        response = client.request(method, path, json=body)
        assert response.status_code == 201, response.text
        created[action] = response.json()["id"]
        assert _count(client) == before + 1, action
        event = _last(client)
        assert (event["action"], event["target_id"], event["actor_email"]) == (
            action,
            created[action],
            ADMIN_EMAIL,
        )
    assert "s3cret" not in json.dumps(client.get("/api/v1/audit").json())

    follow_ups = [
        (
            "PATCH",
            f"/api/v1/workloads/{created['workload.create']}",
            {"priority": 5},
            "workload.update",
        ),
        ("POST", f"/api/v1/workloads/{created['workload.create']}/stop", None, "workload.stop"),
        ("DELETE", f"/api/v1/workloads/{created['workload.create']}", None, "workload.delete"),
        (
            "PATCH",
            f"/api/v1/servers/{created['server.create']}",
            {"status": "draining"},
            "server.update",
        ),
        ("DELETE", f"/api/v1/servers/{created['server.create']}", None, "server.delete"),
        (
            "PATCH",
            f"/api/v1/teams/{created['team.create']}",
            {"members_can_read": True},
            "team.update",
        ),
        ("DELETE", f"/api/v1/tokens/{created['token.create']}", None, "token.revoke"),
        (
            "PATCH",
            f"/api/v1/users/{created['user.create']}",
            {"password": "new-pass-123"},
            "user.update",
        ),
        ("DELETE", f"/api/v1/users/{created['user.create']}", None, "user.delete"),
    ]
    for method, path, body, action in follow_ups:
        before = _count(client)
        response = client.request(method, path, json=body)
        assert response.status_code in (200, 204), response.text
        assert _count(client) == before + 1, action
        assert _last(client)["action"] == action
    assert _last(client)["details"] == {"email": "u@example.com", "role": "user"}

    before = _count(client)
    duplicate = client.post("/api/v1/clusters", json={"name": "c2", "kind": "simulated"})
    assert duplicate.status_code == 409
    bad = client.post("/api/v1/workloads", json={"image": "busybox", "gpu": 1.5})
    assert bad.status_code == 422
    assert _count(client) == before


def test_filters(client: TestClient, ctx: ServiceContext) -> None:
    dev = authed_client(ctx, mint_token(ctx, add_user(ctx, "dev@example.com", "dev-pass-123")))
    work = dev.post("/api/v1/workloads", json={"image": "busybox"}).json()
    dev.post(f"/api/v1/workloads/{work['id']}/stop")
    client.post("/api/v1/teams", json={"name": "t1"})

    def actions(**params: Any) -> list[str]:
        response = client.get("/api/v1/audit", params=params)
        assert response.status_code == 200, response.text
        return [e["action"] for e in response.json()["data"]]

    assert actions(actor="dev@example.com") == ["workload.stop", "workload.create"]
    assert actions(action="workload.") == ["workload.stop", "workload.create"]
    assert actions(action="team.create") == ["team.create"]
    assert actions(target_type="workload", target_id=work["id"]) == [
        "workload.stop",
        "workload.create",
    ]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert actions(since=future) == []
    assert len(actions(until=future)) == _count(client)
    assert actions(action="workload.", limit=1, offset=1) == ["workload.create"]


@sqlite_only
def test_each_event_is_one_json_log_line_after_commit(
    client: TestClient, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=False)  # as `gpuyard serve` does: console format...
    client.post("/api/v1/teams", json={"name": "logged"})
    client.post("/api/v1/teams", json={"name": "logged"})  # refused: rolled back, not logged
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if '"audit_event"' in line]
    assert len(lines) == 1  # ...but audit events are one JSON object per line
    event = json.loads(lines[0])
    assert event["action"] == "team.create"
    assert event["actor_email"] == ADMIN_EMAIL
    assert event["details"]["name"] == "logged"
    assert len(event["hash"]) == 64
