"""GET /fleet/overview (totals, status counts, GPU models, what could start now) and the
GPU cards of GET /servers/{id}: a holder is named only to who may read the workload."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from factories.app import add_user, authed_client, make_context, make_settings, mint_token, settle
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


@dataclass
class Fleet:
    admin: TestClient
    ctx: ServiceContext
    big: str  # online: 8 cpu, 16 GB, 2 x A100
    small: str  # online: 4 cpu, 8 GB, 1 x A100
    drained: str  # draining: 4 cpu, 8 GB, 1 x H100


@pytest.fixture
def fleet(tmp_path: Path, database_url: str | None) -> Iterator[Fleet]:
    """A fleet of our own (no demo cluster), so every number below is known."""
    ctx = make_context(make_settings(tmp_path / "data", database_url, demo=False))
    admin = authed_client(ctx)
    cluster = admin.post("/api/v1/clusters", json={"name": "lab", "kind": "simulated"}).json()

    def server(name: str, cpu: int, ram: int, models: list[str]) -> str:
        body = {
            "name": name,
            "cluster_id": cluster["id"],
            "cpu": cpu,
            "ram_gb": ram,
            "storage_gb": 100,
            "gpus": [{"model": m, "memory_gb": 80} for m in models],
        }
        response = admin.post("/api/v1/servers", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    big = server("big", 8, 16, ["A100", "A100"])
    small = server("small", 4, 8, ["A100"])
    drained = server("drained", 4, 8, ["H100"])
    assert admin.patch(f"/api/v1/servers/{drained}", json={"status": "draining"}).is_success
    yield Fleet(admin, ctx, big, small, drained)
    ctx.db.dispose()


def _user(ctx: ServiceContext, email: str) -> tuple[TestClient, str]:
    user_id = add_user(ctx, email, "some-pass-123")
    return authed_client(ctx, mint_token(ctx, user_id)), user_id


def _run(client: TestClient, ctx: ServiceContext, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/workloads", json={"image": "busybox", **body})
    assert response.status_code == 201, response.text
    settle(ctx)
    return dict(client.get(f"/api/v1/workloads/{response.json()['id']}").json())


def _free(overview: dict[str, Any], model: str | None) -> dict[str, Any]:
    return next(f for f in overview["free_now"] if f["gpu_model"] == model)


def test_totals_status_counts_and_models(fleet: Fleet) -> None:
    _run(fleet.admin, fleet.ctx, name="train", cpu=2, ram_gb=4, gpu=1, gpu_model="A100")
    overview = fleet.admin.get("/api/v1/fleet/overview").json()
    assert overview["servers"] == {
        "total": 3,
        "online": 2,
        "offline": 0,
        "draining": 1,
        "maintenance": 0,
    }
    assert overview["capacity"] == {"cpu": 16, "ram_gb": 32, "storage_gb": 300, "gpu": 4}
    assert overview["allocated"] == {"cpu": 2, "ram_gb": 4, "storage_gb": 0, "gpu": 1}
    # Free counts only servers that take new work: the drained one is out.
    assert overview["free"] == {"cpu": 10, "ram_gb": 20, "storage_gb": 200, "gpu": 2}
    models = {m["model"]: m for m in overview["gpu_models"]}
    assert models["A100"] == {
        "model": "A100",
        "servers": 2,
        "devices": 3,
        "free_devices": 2,
        "allocated": 1.0,
    }
    assert models["H100"]["free_devices"] == 0  # its server is draining


def test_free_now_is_the_largest_request_that_starts_on_one_server(fleet: Fleet) -> None:
    _run(fleet.admin, fleet.ctx, name="share", cpu=1, ram_gb=1, gpu=0.3, gpu_model="A100")
    overview = fleet.admin.get("/api/v1/fleet/overview").json()
    a100 = _free(overview, "A100")
    # The share packed onto the small server's only device (best fit leaves big's two
    # whole): big still has two whole A100s, the small one 0.7 of one.
    assert a100["server_id"] == fleet.big
    assert (a100["gpu"], a100["cpu"], a100["ram_gb"], a100["storage_gb"]) == (2, 8, 16, 100)
    assert a100["gpu_share"] == 0.95  # a free device takes the largest share there is
    assert "H100" not in {f["gpu_model"] for f in overview["free_now"]}  # draining only
    cpu_only = _free(overview, None)
    assert (cpu_only["gpu"], cpu_only["cpu"], cpu_only["servers"]) == (0, 8, 2)

    # What it offers really starts; one more GPU than it offers waits.
    fits = _run(fleet.admin, fleet.ctx, name="fits", cpu=8, ram_gb=16, gpu=2, gpu_model="A100")
    assert (fits["status"], fits["server_id"]) == ("running", fleet.big)
    after = _free(fleet.admin.get("/api/v1/fleet/overview").json(), "A100")
    assert (after["gpu"], after["gpu_share"], after["server_id"]) == (0, 0.7, fleet.small)
    waits = _run(fleet.admin, fleet.ctx, name="waits", gpu=1, gpu_model="A100")
    assert waits["status"] == "pending"


def test_a_request_may_name_several_models(fleet: Fleet) -> None:
    # The openb trace's form: any of the models will do. H100 is only on a draining server.
    either = _run(fleet.admin, fleet.ctx, name="either", cpu=1, gpu=1, gpu_model="H100|A100")
    assert either["status"] == "running"
    assert either["server_id"] in {fleet.big, fleet.small}
    assert either["gpu_model"] == "H100|A100"
    neither = _run(fleet.admin, fleet.ctx, name="neither", cpu=1, gpu=1, gpu_model="H100|T4")
    assert neither["status"] == "pending"
    assert neither["server_id"] is None


def test_one_cluster_at_a_time(fleet: Fleet) -> None:
    other = fleet.admin.post("/api/v1/clusters", json={"name": "other", "kind": "simulated"})
    body = {"name": "o-1", "cluster_id": other.json()["id"], "cpu": 2, "ram_gb": 4}
    assert fleet.admin.post("/api/v1/servers", json=body).status_code == 201
    whole = fleet.admin.get("/api/v1/fleet/overview").json()
    only = fleet.admin.get("/api/v1/fleet/overview", params={"cluster_id": other.json()["id"]})
    assert whole["servers"]["total"] == 4
    assert only.json()["servers"]["total"] == 1
    assert only.json()["capacity"] == {"cpu": 2, "ram_gb": 4, "storage_gb": 0, "gpu": 0}
    assert [f["gpu_model"] for f in only.json()["free_now"]] == [None]
    unknown = fleet.admin.get("/api/v1/fleet/overview", params={"cluster_id": "nope"})
    assert unknown.json()["servers"]["total"] == 0
    too_long = fleet.admin.get("/api/v1/fleet/overview", params={"cluster_id": "x" * 65})
    assert too_long.status_code == 422


def test_users_read_the_overview_without_learning_whose_work_runs(fleet: Fleet) -> None:
    _run(fleet.admin, fleet.ctx, name="secret-project", cpu=1, gpu=1, gpu_model="A100")
    user, _ = _user(fleet.ctx, "dev@example.com")
    response = user.get("/api/v1/fleet/overview")
    assert response.status_code == 200
    assert response.json()["allocated"]["gpu"] == 1
    assert "secret-project" not in response.text
    assert TestClient(fleet.admin.app).get("/api/v1/fleet/overview").status_code == 401


def test_gpu_holders_are_named_only_to_who_may_read_the_workload(fleet: Fleet) -> None:
    owner, owner_id = _user(fleet.ctx, "owner@example.com")
    other, _ = _user(fleet.ctx, "other@example.com")
    work = _run(owner, fleet.ctx, name="vision", cpu=1, gpu=0.5, gpu_model="A100")
    server_id, index = work["server_id"], work["gpu_indices"][0]

    def card(client: TestClient) -> dict[str, Any]:
        response = client.get(f"/api/v1/servers/{server_id}")
        assert response.status_code == 200, response.text
        return dict(next(g for g in response.json()["gpus"] if g["index"] == index))

    named = {
        "share": 0.5,
        "workload_id": work["id"],
        "workload_name": "vision",
        "owner_id": owner_id,
        "owner": "owner@example.com",
        "replica": 0,
    }
    assert card(owner)["holders"] == [named]
    assert card(fleet.admin)["holders"] == [named]  # admins read every workload
    anonymous_share = {
        "share": 0.5,
        "workload_id": None,
        "workload_name": None,
        "owner_id": None,
        "owner": None,
        "replica": None,
    }
    hidden = card(other)
    assert hidden["holders"] == [anonymous_share]
    assert hidden["allocated_milli"] == 500
    assert work["id"] not in other.get(f"/api/v1/servers/{server_id}").text
    assert "vision" not in other.get(f"/api/v1/servers/{server_id}").text
    # Free GPUs list no holders; the server list does not load them (null).
    cards = other.get(f"/api/v1/servers/{server_id}").json()["gpus"]
    assert all(g["holders"] == [] for g in cards if g["index"] != index)
    listed = other.get("/api/v1/servers").json()["data"]
    assert all(g["holders"] is None for s in listed for g in s["gpus"])


def test_an_unknown_server_is_not_found(fleet: Fleet) -> None:
    assert fleet.admin.get("/api/v1/servers/nope").status_code == 404
