"""GET /servers/{id}/history and GET /fleet/history: each window at its level, for every
signed-in role (fleet.read), with bounded, validated parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from factories.app import add_user, authed_client, mint_token, settle
from factories.clock import ManualClock
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext
from gpuyard.services.usage.sampling import sample_usage


def _history_of_two_hours(ctx: ServiceContext, client: TestClient) -> str:
    """A running 1-GPU workload and two hours of ticks every 10 s, from the start of an
    hour; its server's id."""
    hour = 3600
    clock = ManualClock(
        datetime.fromtimestamp((int(ctx.now().timestamp()) // hour + 1) * hour, UTC)
    )
    ctx.clock = clock
    created = client.post("/api/v1/workloads", json={"image": "busybox", "gpu": 1})
    assert created.status_code == 201, created.text
    settle(ctx)
    for _ in range(2 * 360):
        clock.advance(10)
        sample_usage(ctx)
    server_id = client.get(f"/api/v1/workloads/{created.json()['id']}").json()["server_id"]
    assert server_id
    return str(server_id)


@pytest.mark.parametrize(
    ("window", "bucket_s", "points"),
    [("1h", 10, 360), ("6h", 60, 120), ("1d", 60, 120), ("30d", 900, 8)],
    ids=["hour: raw samples", "6h: minutes", "day: minutes", "month: quarters"],
)
def test_each_window_at_its_bucket_size(
    ctx: ServiceContext, client: TestClient, window: str, bucket_s: int, points: int
) -> None:
    server_id = _history_of_two_hours(ctx, client)

    answer = client.get(f"/api/v1/servers/{server_id}/history", params={"window": window})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["window"], body["bucket_s"], body["unit"]) == (window, bucket_s, "percent")
    assert len(body["points"]) == points
    if bucket_s < 900:
        assert [g["index"] for g in body["gpus"]] == list(range(8))
        assert all(len(g["points"]) == points for g in body["gpus"])
    else:
        assert body["gpus"] == []  # per-GPU figures are kept for a day
    last = body["points"][-1]
    assert last["gpu_allocated"]["avg"] == 12.5  # one of its eight GPUs
    assert last["samples"] == bucket_s // 10
    assert last["gpu_utilization"]["avg"] <= last["gpu_utilization"]["max"]
    fleet = client.get("/api/v1/fleet/history", params={"window": window}).json()
    assert (fleet["bucket_s"], len(fleet["points"])) == (bucket_s, points)
    assert "gpus" not in fleet


def test_a_user_reads_the_history_too(ctx: ServiceContext, client: TestClient) -> None:
    server_id = client.get("/api/v1/servers").json()["data"][0]["id"]
    sample_usage(ctx)
    user = authed_client(ctx, mint_token(ctx, add_user(ctx, "u@example.com", "long-enough-1")))

    answer = user.get(f"/api/v1/servers/{server_id}/history")

    assert answer.status_code == 200, answer.text
    assert len(answer.json()["points"]) == 1
    assert user.get("/api/v1/fleet/history").status_code == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/fleet/history?window=2h", "window"),
        ("/api/v1/fleet/history?window=", "window"),
        ("/api/v1/fleet/history?window=" + "1" * 10_000, "window"),
        ("/api/v1/fleet/history?window=1h%00", "window"),
        ("/api/v1/servers/{server_id}/history?window=1H", "window"),
        ("/api/v1/servers/" + "a" * 65 + "/history", "server_id"),
    ],
    ids=["unknown window", "empty", "long", "nul", "case matters", "long server id"],
)
def test_bad_parameters_are_a_422_naming_the_field(
    client: TestClient, path: str, field: str
) -> None:
    server_id = client.get("/api/v1/servers").json()["data"][0]["id"]

    answer = client.get(path.replace("{server_id}", server_id))

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_an_unknown_server_is_a_404(client: TestClient) -> None:
    answer = client.get("/api/v1/servers/0123456789abcdef0123456789abcdef/history")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
