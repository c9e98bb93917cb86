"""GPU shares in 0.05 steps (issue 21): twenty 0.05 shares fill one device exactly, a
quarter GPU is a valid request, and an operator's finer rule (GPUYARD_GPU_SHARE_STEP)
reaches the API's validation and the fleet overview that the dashboard's form reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gpuyard.services.context import ServiceContext


def _fleet(tmp_path: Path, database_url: str | None, **settings: Any) -> tuple[TestClient, str]:
    ctx = make_context(make_settings(tmp_path / "data", database_url, demo=False, **settings))
    _CONTEXTS.append(ctx)
    admin = authed_client(ctx)
    cluster = admin.post("/api/v1/clusters", json={"name": "lab", "kind": "simulated"}).json()
    body = {
        "name": "one-gpu",
        "cluster_id": cluster["id"],
        "cpu": 64,
        "ram_gb": 256,
        "storage_gb": 100,
        "gpus": [{"model": "A100", "memory_gb": 80}],
    }
    response = admin.post("/api/v1/servers", json=body)
    assert response.status_code == 201, response.text
    return admin, str(response.json()["id"])


_CONTEXTS: list[ServiceContext] = []


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    while _CONTEXTS:
        _CONTEXTS.pop().db.dispose()


def _submit(admin: TestClient, gpu: float, name: str) -> Any:
    body = {"image": "busybox", "name": name, "cpu": 0.1, "ram_gb": 0.1, "gpu": gpu}
    return admin.post("/api/v1/workloads", json=body)


def test_twenty_smallest_shares_fill_one_device_and_the_next_waits(
    tmp_path: Path, database_url: str | None
) -> None:
    admin, server_id = _fleet(tmp_path, database_url)
    for i in range(20):
        response = _submit(admin, 0.05, f"tiny-{i}")
        assert response.status_code == 201, response.text
    extra = _submit(admin, 0.05, "one-too-many")
    assert extra.status_code == 201, extra.text
    settle(_CONTEXTS[-1])
    gpus = admin.get(f"/api/v1/servers/{server_id}").json()["gpus"]
    assert [g["allocated_milli"] for g in gpus] == [1000]
    waiting = admin.get(f"/api/v1/workloads/{extra.json()['id']}").json()
    assert waiting["status"] == "pending"
    assert "GPU" in waiting["reason"]


def test_a_quarter_gpu_is_placed_and_the_overview_offers_the_rest(
    tmp_path: Path, database_url: str | None
) -> None:
    admin, _ = _fleet(tmp_path, database_url)
    response = _submit(admin, 0.25, "quarter")
    assert response.status_code == 201, response.text
    settle(_CONTEXTS[-1])
    placed = admin.get(f"/api/v1/workloads/{response.json()['id']}").json()
    assert placed["status"] in {"scheduled", "starting", "running"}
    assert placed["gpu"] == 0.25
    overview = admin.get("/api/v1/fleet/overview").json()
    assert (overview["gpu_share_min"], overview["gpu_share_step"]) == (0.05, 0.05)
    a100 = next(f for f in overview["free_now"] if f["gpu_model"] == "A100")
    assert a100["gpu_share"] == 0.75


@pytest.mark.parametrize(
    ("gpu", "status"),
    [(0.123, 201), (0.02, 201), (0.019, 422), (0.999, 201)],
    ids=["any milli value", "the minimum", "below the minimum", "the top milli"],
)
def test_an_operators_finer_rule_reaches_the_api(
    tmp_path: Path, database_url: str | None, gpu: float, status: int
) -> None:
    admin, _ = _fleet(tmp_path, database_url, gpu_share_min=0.02, gpu_share_step=0.001)
    before = admin.get("/api/v1/workloads").json()["count"]
    response = _submit(admin, gpu, "fine")
    assert response.status_code == status, response.text
    if status == 422:
        assert [e["field"] for e in response.json()["errors"]] == ["gpu"]
        assert "0.02-0.999 in steps of 0.001" in response.json()["errors"][0]["message"]
        assert admin.get("/api/v1/workloads").json()["count"] == before
    overview = admin.get("/api/v1/fleet/overview").json()
    assert (overview["gpu_share_min"], overview["gpu_share_step"]) == (0.02, 0.001)


def _two_gpu_fleet(tmp_path: Path, database_url: str | None) -> tuple[TestClient, str]:
    """One server with an 80 GB and a 40 GB device."""
    ctx = make_context(make_settings(tmp_path / "data", database_url, demo=False))
    _CONTEXTS.append(ctx)
    admin = authed_client(ctx)
    cluster = admin.post("/api/v1/clusters", json={"name": "lab", "kind": "simulated"}).json()
    body = {
        "name": "two-gpus",
        "cluster_id": cluster["id"],
        "cpu": 64,
        "ram_gb": 256,
        "storage_gb": 100,
        "gpus": [{"model": "A100", "memory_gb": 80}, {"model": "A100", "memory_gb": 40}],
    }
    response = admin.post("/api/v1/servers", json=body)
    assert response.status_code == 201, response.text
    return admin, str(response.json()["id"])


def _with_memory(admin: TestClient, name: str, gpu: float, memory_gb: float) -> Any:
    body = {
        "image": "busybox",
        "name": name,
        "cpu": 0.1,
        "ram_gb": 0.1,
        "gpu": gpu,
        "gpu_memory_gb": memory_gb,
    }
    return admin.post("/api/v1/workloads", json=body)


def test_memory_requests_are_packed_per_device_and_never_oversubscribe_one(
    tmp_path: Path, database_url: str | None
) -> None:
    admin, server_id = _two_gpu_fleet(tmp_path, database_url)
    # 0.1 GPU each: the milli would let all four share one device; their memory does not.
    ids = []
    for i, memory in enumerate((50, 30, 30, 20)):
        response = _with_memory(admin, f"mem-{i}", 0.1, memory)
        assert response.status_code == 201, response.text
        assert response.json()["gpu_memory_gb"] == memory
        ids.append(response.json()["id"])
    settle(_CONTEXTS[-1])
    gpus = {g["index"]: g for g in admin.get(f"/api/v1/servers/{server_id}").json()["gpus"]}
    for g in gpus.values():
        assert g["allocated_memory_gb"] <= g["memory_gb"]
    placed = [admin.get(f"/api/v1/workloads/{i}").json() for i in ids]
    running = [w for w in placed if w["status"] in {"scheduled", "starting", "running"}]
    # 50 + 30 fit the 80 GB device, 30 the 40 GB one; the last 20 GB fits neither then.
    assert sum(g["allocated_memory_gb"] for g in gpus.values()) == sum(
        w["gpu_memory_gb"] for w in running
    )
    assert len(running) == 3
    waiting = next(w for w in placed if w["status"] == "pending")
    assert waiting["gpu_memory_gb"] == 20
    assert "memory" in waiting["reason"]
    # Stopping one gives its memory back, and the waiting one takes it.
    first = next(w for w in running if w["gpu_memory_gb"] == 30)
    assert admin.post(f"/api/v1/workloads/{first['id']}/stop").status_code in {200, 202, 204}
    settle(_CONTEXTS[-1])
    now = admin.get(f"/api/v1/workloads/{waiting['id']}").json()
    assert now["status"] in {"scheduled", "starting", "running"}
    gpus = {g["index"]: g for g in admin.get(f"/api/v1/servers/{server_id}").json()["gpus"]}
    assert sum(g["allocated_memory_gb"] for g in gpus.values()) == 50 + 30 + 20


@pytest.mark.parametrize(
    ("gpu", "memory", "message"),
    [
        (1, 10, "only with a share"),
        (0, 10, "only with a share"),
        (0.5, 81, "the largest has 80 GB"),
        (0.5, -1, "must not be negative"),
        (0.5, 10**6, "less than or equal to 4096"),
        (0.5, "10", "valid number"),
    ],
    ids=["a whole gpu", "no gpu", "more than any device", "negative", "huge", "a string"],
)
def test_a_bad_gpu_memory_request_is_refused_naming_the_field(
    tmp_path: Path, database_url: str | None, gpu: float, memory: Any, message: str
) -> None:
    admin, _ = _two_gpu_fleet(tmp_path, database_url)
    response = _with_memory(admin, "bad", gpu, memory)
    assert response.status_code == 422, response.text
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert "gpu_memory_gb" in fields, fields
    assert message in fields["gpu_memory_gb"]
    assert admin.get("/api/v1/workloads").json()["count"] == 0


def test_a_resize_keeps_the_shares_memory_and_a_whole_gpu_is_refused(
    tmp_path: Path, database_url: str | None
) -> None:
    admin, server_id = _two_gpu_fleet(tmp_path, database_url)
    created = _with_memory(admin, "grow", 0.25, 30)
    assert created.status_code == 201, created.text
    workload_id = created.json()["id"]
    settle(_CONTEXTS[-1])
    grown = admin.patch(f"/api/v1/workloads/{workload_id}", json={"gpu": 0.5})
    assert grown.status_code == 200, grown.text
    assert (grown.json()["gpu"], grown.json()["gpu_memory_gb"]) == (0.5, 30)
    settle(_CONTEXTS[-1])
    gpus = admin.get(f"/api/v1/servers/{server_id}").json()["gpus"]
    assert sorted((g["allocated_milli"], g["allocated_memory_gb"]) for g in gpus) == [
        (0, 0),
        (500, 30),
    ]
    whole = admin.patch(f"/api/v1/workloads/{workload_id}", json={"gpu": 1})
    assert whole.status_code == 422, whole.text
    assert [e["field"] for e in whole.json()["errors"]] == ["gpu_memory_gb"]
    after = admin.get(f"/api/v1/workloads/{workload_id}").json()
    assert (after["gpu"], after["gpu_memory_gb"]) == (0.5, 30)


def test_memory_beyond_every_device_of_the_named_model_is_refused(
    tmp_path: Path, database_url: str | None
) -> None:
    admin, _ = _two_gpu_fleet(tmp_path, database_url)
    admin.post(
        "/api/v1/servers",
        json={
            "name": "small-gpus",
            "cluster_id": admin.get("/api/v1/clusters").json()["data"][0]["id"],
            "cpu": 8,
            "ram_gb": 32,
            "storage_gb": 10,
            "gpus": [{"model": "T4", "memory_gb": 16}],
        },
    ).raise_for_status()
    body = {"image": "busybox", "cpu": 0.1, "gpu": 0.5, "gpu_memory_gb": 20}
    refused = admin.post("/api/v1/workloads", json={**body, "gpu_model": "T4"})
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["field"] == "gpu_memory_gb"
    assert "no T4 GPU of any server has 20 GB of memory: the largest has 16 GB" in error["message"]
    # Any model will do: the 80 GB device can hold it.
    assert admin.post("/api/v1/workloads", json=body).status_code == 201


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"gpu_share_min": 0.99, "gpu_share_step": 0.05}, "no share below one GPU"),
        ({"gpu_share_step": 0.0505}, "whole number of milli GPUs"),
        ({"gpu_share_min": 0}, "greater than or equal to 0.001"),
    ],
    ids=["no share allowed", "finer than a milli", "zero minimum"],
)
def test_a_share_rule_that_cannot_work_is_refused_at_start_up(
    tmp_path: Path, settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(tmp_path / "data", None, **settings)
