"""Unstorable text (issue 13, class 1): refused at the edge, refused by the store behind
it, and a row an older version did store still renders for everyone."""

from __future__ import annotations

import json

import pytest
from factories.app import add_user, authed_client, mint_token, sqlite_only
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from starlette.websockets import WebSocketDisconnect

from gpuyard.domain.text import REPLACEMENT
from gpuyard.services.context import ServiceContext
from gpuyard.store.workload_tables import WorkloadRow


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"env": {"A": "x\x00"}}, "env.A"),
        ({"name": "job\x00"}, "name"),
        ({"command": ["sh", "-c", "\ud800"]}, "command.2"),
        ({"node_selector": {"zone": "\udfff"}}, "node_selector.zone"),
        ({"image": "busy\x00box"}, "image"),
    ],
    ids=["NUL in env", "NUL in name", "surrogate in command", "surrogate in selector", "image"],
)
def test_unstorable_text_is_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    payload = json.dumps({"image": "busybox", **body}).encode()
    response = client.post(
        "/api/v1/workloads", content=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert client.get("/api/v1/workloads").json()["count"] == 0
    assert client.get("/api/v1/audit", params={"action": "workload."}).json()["count"] == 0


def test_nul_in_a_query_or_path_parameter_is_a_422_not_a_database_error(
    client: TestClient,
) -> None:
    for url, field in [
        ("/api/v1/workloads?name=a%00b", "name"),
        ("/api/v1/workloads/abc%00", "workload_id"),
        ("/api/v1/audit?actor=%00", "actor"),
    ]:
        response = client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]


def test_the_store_refuses_to_write_unstorable_json(ctx: ServiceContext) -> None:
    """Behind the API's check: a bug that let such text through fails its own statement
    (and so its transaction) instead of poisoning later reads."""
    owner = add_user(ctx, "writer@example.com", "some-pass-123")
    with pytest.raises((StatementError, ValueError)), ctx.db.write() as session:
        session.add(
            WorkloadRow(
                name="bad",
                owner_id=owner,
                image="busybox",
                env={"A": "\ud800"},
                cpu_milli=100,
                ram_mib=0,
                storage_mib=0,
                gpu_milli=0,
            )
        )
    with ctx.db.read() as session:
        assert session.query(WorkloadRow).count() == 0


@sqlite_only
def test_a_row_stored_by_an_older_version_renders_for_everyone(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Before the fix, such a row made every list that showed it answer 500, for admins
    too, across restarts. (PostgreSQL's json type refuses a lone surrogate escape, so only
    SQLite could hold one.)"""
    reader_id = add_user(ctx, "reader@example.com", "some-pass-123", role="operator")
    created = client.post("/api/v1/workloads", json={"image": "busybox", "env": {"A": "1"}})
    other = client.post("/api/v1/workloads", json={"image": "busybox"})
    with ctx.db.write() as session:  # what an older version wrote, byte for byte
        session.execute(
            text("UPDATE workloads SET env = :raw, command = :cmd WHERE id = :id"),
            {"raw": '{"A": "\\ud800"}', "cmd": '["\\udfff"]', "id": created.json()["id"]},
        )
    reader = authed_client(ctx, mint_token(ctx, reader_id))
    for caller in (client, reader):
        listed = caller.get("/api/v1/workloads")
        assert listed.status_code == 200, listed.text
        assert listed.json()["count"] == 2
        assert caller.get(f"/api/v1/workloads/{other.json()['id']}").status_code == 200
        assert caller.get("/api/v1/queue").status_code == 200
    shown = client.get(f"/api/v1/workloads/{created.json()['id']}").json()
    assert shown["env"] == {"A": REPLACEMENT}
    assert shown["command"] == [REPLACEMENT]


def test_nul_in_a_websocket_path_closes_the_socket_instead_of_a_500(
    client: TestClient,
) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/api/v1/workloads/abc%00/exec") as socket,
    ):
        socket.receive_text()
    assert closed.value.code == 1008
    assert closed.value.reason == "workload_id: must not contain NUL characters"
