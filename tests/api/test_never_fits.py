"""Refuse what can never run (issue 21): a submit or resize that no server of the
request's cluster (or of the fleet) could hold even empty is a 422 naming the field and
saying what exists; nothing is written. Offline servers count; a server added later is
seen at once (the capacity index reads what changed). SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from factories.app import settle
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpuyard.services.context import ServiceContext


def _count(ctx: ServiceContext, table: str) -> int:
    with ctx.db.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _refusal(response: Any) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1, response.text
    return str(errors[0]["field"]), str(errors[0]["message"])


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"gpu": 1, "gpu_model": "B200"}, "gpu_model", "NVIDIA H100 80GB HBM3 (up to 8"),
        ({"gpu": 16}, "gpu", "at most 8 per server"),
        ({"gpu": 8, "gpu_model": "A100", "node_selector": {"gpu": "h100"}}, "gpu_model", "H100"),
        ({"cpu": 65}, "cpu", "at most 64 per server"),
        ({"cpu": 1, "ram_gb": 4096}, "ram_gb", "at most 512 GB"),
        ({"cpu": 1, "node_selector": {"zone": "mars"}}, "node_selector", "'demo'"),
    ],
)
def test_a_request_no_server_could_hold_is_refused_naming_what_exists(
    client: TestClient, ctx: ServiceContext, body: dict[str, Any], field: str, says: str
) -> None:
    before = _count(ctx, "workloads"), _count(ctx, "audit_events")
    named, message = _refusal(client.post("/api/v1/workloads", json={"image": "x", **body}))
    assert named == field
    assert "can never run" in message, message
    assert says in message, message
    assert (_count(ctx, "workloads"), _count(ctx, "audit_events")) == before


def test_offline_servers_count_and_a_new_server_is_seen_at_once(
    client: TestClient, ctx: ServiceContext
) -> None:
    with ctx.db.write() as session:  # the health loop's verdict on every demo server
        session.execute(text("UPDATE servers SET status = 'offline'"))
    waits = client.post("/api/v1/workloads", json={"image": "x", "gpu": 8, "gpu_model": "H100"})
    assert waits.status_code == 201, waits.text

    body = {"image": "x", "gpu": 2, "gpu_model": "B200"}
    assert _refusal(client.post("/api/v1/workloads", json=body))[0] == "gpu_model"
    cluster_id = client.get("/api/v1/clusters").json()["data"][0]["id"]
    added = client.post(
        "/api/v1/servers",
        json={
            "name": "b200-node",
            "cluster_id": cluster_id,
            "cpu": 32,
            "ram_gb": 256,
            "gpus": [{"model": "NVIDIA B200", "memory_gb": 192}] * 2,
        },
    )
    assert added.status_code == 201, added.text
    accepted = client.post("/api/v1/workloads", json=body)
    assert accepted.status_code == 201, accepted.text

    # A cluster without servers yet is not judged: its servers may not be listed yet.
    empty = client.post("/api/v1/clusters", json={"name": "later", "kind": "simulated"})
    assert empty.status_code == 201, empty.text
    later = {"image": "x", "gpu": 64, "cluster_id": empty.json()["id"]}
    assert client.post("/api/v1/workloads", json=later).status_code == 201


def test_a_resize_that_can_never_fit_is_refused_rather_than_evicting(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = client.post("/api/v1/workloads", json={"image": "x", "gpu": 2, "gpu_model": "H100"})
    assert created.status_code == 201, created.text
    settle(ctx)
    path = f"/api/v1/workloads/{created.json()['id']}"
    running = client.get(path).json()
    assert running["status"] == "running"

    assert _refusal(client.patch(path, json={"gpu": 16}))[0] == "gpu"
    assert _refusal(client.patch(path, json={"gpu_model": "B200"}))[0] == "gpu_model"
    assert _refusal(client.patch(path, json={"cpu": 100, "priority": 1}))[0] == "cpu"
    after = client.get(path).json()
    assert after["status"] == "running"
    for kept in ("gpu", "cpu", "gpu_model", "priority", "placements"):
        assert after[kept] == running[kept], kept

    grown = client.patch(path, json={"gpu": 8})  # fits an emptied server: re-queued
    assert grown.status_code == 200, grown.text
    assert grown.json()["gpu"] == 8
