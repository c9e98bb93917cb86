"""GET /metrics: the real app scraped and parsed with prometheus_client's parser; its
figures agree with the API's own after placing workloads; route labels stay bounded;
only admins, operators and the scrapers' token get in."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.app import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    add_user,
    make_context,
    make_settings,
    mint_token,
    settle,
    sqlite_only,
)
from factories.metrics import by_label, parse_samples, value
from factories.processes import serve_processes
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gpuyard.api.app import create_app
from gpuyard.api.authorization import check_route_permissions
from gpuyard.auth.permissions import Permission
from gpuyard.services.context import ServiceContext
from gpuyard.settings import Settings

GIB = 1024**3
SCRAPER_TOKEN = "scrape-" + "k3y" * 10  # 37 characters


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"image": "pytorch/pytorch:2.4", "cpu": 4, "ram_gb": 32, "gpu": 1, **body}
    response = client.post("/api/v1/workloads", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def scrape(client: TestClient | httpx.Client, **headers: str) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def test_figures_agree_with_the_api_after_placing_workloads(
    client: TestClient, ctx: ServiceContext
) -> None:
    team = client.post("/api/v1/teams", json={"name": "vision"})
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    create(client, name="fill-a", gpu=8, gpu_model="H100", preemptible=False, team_id=team_id)
    create(client, name="fill-b", gpu=8, gpu_model="H100", preemptible=False)
    create(client, name="half", gpu=0.5, gpu_model="A100", cpu=2, ram_gb=8)
    settle(ctx)
    create(client, name="low", gpu=4, gpu_model="H100", priority=1, team_id=team_id)
    create(client, name="high", gpu=4, gpu_model="H100", priority=5)
    create(client, name="high-2", gpu=2, gpu_model="H100", priority=5, team_id=team_id)
    # A model no server has any more: it was accepted while one did (submit refuses a
    # model no server has), then its server left the fleet.
    cluster_id = client.get("/api/v1/clusters").json()["data"][0]["id"]
    gpus = [{"model": "NVIDIA B200", "memory_gb": 192}] * 8
    b200 = client.post(
        "/api/v1/servers",
        json={"name": "b200", "cluster_id": cluster_id, "cpu": 8, "ram_gb": 64, "gpus": gpus},
    )
    assert b200.status_code == 201, b200.text
    assert (
        client.patch(
            f"/api/v1/servers/{b200.json()['id']}", json={"status": "maintenance"}
        ).status_code
        == 200
    )
    create(client, name="never", gpu=8, gpu_model="NVIDIA B200", priority=2)
    assert client.delete(f"/api/v1/servers/{b200.json()['id']}").status_code == 204
    settle(ctx)  # records the pending reasons GET /queue reports

    samples = parse_samples(scrape(client))

    servers = client.get("/api/v1/servers").json()["data"]
    for server in servers:
        name = server["name"]
        allocated = by_label(samples, "gpuyard_server_allocated", "server", "resource")
        capacity = by_label(samples, "gpuyard_server_capacity", "server", "resource")
        assert allocated[(name, "cpu_cores")] == pytest.approx(server["allocated"]["cpu"])
        assert allocated[(name, "ram_bytes")] == pytest.approx(server["allocated"]["ram_gb"] * GIB)
        assert allocated[(name, "gpus")] == pytest.approx(server["allocated"]["gpu"])
        assert capacity[(name, "gpus")] == pytest.approx(server["capacity"]["gpu"])
        assert capacity[(name, "storage_bytes")] == pytest.approx(
            server["capacity"]["storage_gb"] * GIB
        )
        assert value(samples, "gpuyard_server_status", server=name, status=server["status"]) == 1
        for gpu in server["gpus"]:
            labels = {"server": name, "gpu": str(gpu["index"]), "uuid": gpu["uuid"]}
            assert value(samples, "gpuyard_gpu_allocated_ratio", **labels) == pytest.approx(
                gpu["allocated_milli"] / 1000
            )
            util = value(samples, "gpuyard_gpu_utilization_ratio", **labels)
            assert 0 <= util <= 1  # simulated: made up from the allocation
            assert value(samples, "gpuyard_gpu_memory_total_bytes", **labels) == pytest.approx(
                gpu["memory_gb"] * GIB
            )
    assert sum(s["allocated"]["gpu"] for s in servers) == pytest.approx(16.5)

    queue = client.get("/api/v1/queue").json()["data"]
    assert len(queue) == 4
    codes = Counter(entry["code"] for entry in queue)
    pending = by_label(samples, "gpuyard_workloads_pending", "reason")
    assert {k[0]: v for k, v in pending.items() if v} == codes
    assert len(codes) >= 2, codes  # "never" can never fit; the others wait for room
    teams = {team_id: "vision", None: ""}
    depth = Counter(
        (teams[entry["workload"]["team_id"]], str(entry["workload"]["priority"])) for entry in queue
    )
    assert by_label(samples, "gpuyard_queue_depth", "team", "priority") == depth

    running = client.get("/api/v1/workloads", params={"status": "running"}).json()["count"]
    assert running == 3
    assert value(samples, "gpuyard_workloads", status="running") == running
    assert value(samples, "gpuyard_workloads", status="pending") == len(queue)
    assert value(samples, "gpuyard_scheduler_placements_total") == running
    assert value(samples, "gpuyard_scheduler_preemptions_total") == 0
    cycles = value(samples, "gpuyard_scheduler_cycle_duration_seconds_count")
    assert cycles >= 2
    bus = ctx.bus.health()
    states = by_label(samples, "gpuyard_bus_state", "transport", "state")
    assert {key for key, on in states.items() if on} == {(bus.transport, bus.state)}


def test_route_labels_stay_bounded_over_a_thousand_distinct_ids(client: TestClient) -> None:
    for n in range(1000):
        assert client.get(f"/api/v1/workloads/w{n:04d}").status_code == 404
    for n in range(50):
        client.get(f"/no/such/path/{n}")  # matched by no route (or by the dashboard's)

    samples = parse_samples(scrape(client))
    routes = by_label(
        samples, "gpuyard_http_request_duration_seconds_count", "method", "route", "status_class"
    )
    assert routes[("GET", "/api/v1/workloads/{workload_id}", "4xx")] == 1000
    assert not [key for key in routes if "w0" in key[1] or "/no/such" in key[1]], routes
    assert len(routes) <= 6, routes  # login, the workloads, the unmatched or dashboard paths


@sqlite_only
def test_who_may_scrape(client: TestClient, ctx: ServiceContext) -> None:
    app = create_app(ctx)
    anonymous = TestClient(app)
    assert anonymous.get("/metrics").status_code == 401
    for role, status in (("user", 403), ("operator", 200), ("admin", 200)):
        user_id = add_user(ctx, f"{role}-reader@example.com", "a-long-password", role)
        headers = {"Authorization": f"Bearer {mint_token(ctx, user_id)}"}
        response = anonymous.get("/metrics", headers=headers)
        assert response.status_code == status, (role, response.text)
        if status == 403:
            assert response.headers["content-type"] == "application/problem+json"
            assert "metrics.read" in response.json()["detail"]
    # No token configured: a made-up bearer is just an unknown credential.
    assert anonymous.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 401


def test_the_scrapers_token_gets_in_and_nothing_else_does(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None, metrics_token=SCRAPER_TOKEN))
    try:
        anonymous = TestClient(create_app(ctx))
        samples = parse_samples(scrape(anonymous, Authorization=f"Bearer {SCRAPER_TOKEN}"))
        assert value(samples, "gpuyard_workloads", status="pending") == 0
        for wrong in (SCRAPER_TOKEN[:-1], SCRAPER_TOKEN + "x", SCRAPER_TOKEN.upper()):
            response = anonymous.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
            assert response.status_code == 401
        # The scrapers' token is no key to anything else.
        headers = {"Authorization": f"Bearer {SCRAPER_TOKEN}"}
        assert anonymous.get("/api/v1/servers", headers=headers).status_code == 401
        assert anonymous.get("/api/v1/auth/me", headers=headers).status_code == 401
    finally:
        ctx.db.dispose()


@pytest.mark.parametrize(
    "token", ["changeme", "short-token", "x" * 23], ids=["placeholder", "short", "23-chars"]
)
def test_a_weak_scrapers_token_is_refused_at_startup(token: str) -> None:
    with pytest.raises(ValidationError, match="GPUYARD_METRICS_TOKEN"):
        Settings(metrics_token=token)  # type: ignore[arg-type]


@sqlite_only
def test_metrics_is_outside_the_openapi_document_but_declares_its_permission(
    client: TestClient,
) -> None:
    document = client.get("/api/openapi.json").json()
    assert "/metrics" not in document["paths"]
    # Still checked: the app refuses to build a route without exactly one permission.
    declared = check_route_permissions(client.app)  # type: ignore[arg-type]
    assert declared[("GET", "/metrics")] is Permission.METRICS_READ


def test_a_served_process_exports_its_own_requests_and_the_fleet(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_METRICS_TOKEN": SCRAPER_TOKEN,
        "GPUYARD_DEMO": "true",
        "GPUYARD_LOCAL_DOCKER": "off",
    }
    with (
        serve_processes(1, data_dir, None, env) as (url,),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        login = http.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        session = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = http.post(
            "/api/v1/workloads",
            json={"image": "busybox", "cpu": 1, "ram_gb": 1, "gpu": 2},
            headers=session,
        )
        assert created.status_code == 201, created.text
        workload_id = created.json()["id"]
        for _ in range(100):  # the process's own scheduler loop places it
            got = http.get(f"/api/v1/workloads/{workload_id}", headers=session).json()
            if got["status"] == "running":
                break
            time.sleep(0.1)
        assert got["status"] == "running", got
        samples = parse_samples(scrape(http, Authorization=f"Bearer {SCRAPER_TOKEN}"))
    assert value(samples, "gpuyard_workloads", status="running") == 1
    assert value(samples, "gpuyard_scheduler_placements_total") == 1
    gpus = by_label(samples, "gpuyard_server_allocated", "server", "resource")
    assert sum(v for (_, resource), v in gpus.items() if resource == "gpus") == 2
    requests = by_label(
        samples, "gpuyard_http_request_duration_seconds_count", "method", "route", "status_class"
    )
    assert requests[("POST", "/api/v1/workloads", "2xx")] == 1
    assert requests[("GET", "/api/v1/workloads/{workload_id}", "2xx")] >= 1


@sqlite_only
@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer " + b"x" * 60_000,
        "Bearer ćçè".encode("latin-1", "replace"),
        b"Bearer \xff\xfe",
        b"Bearer",
        b"bearer  " + SCRAPER_TOKEN.encode(),
        b"Basic " + SCRAPER_TOKEN.encode(),
    ],
    ids=["long", "latin-1", "invalid-utf8", "no-token", "token-without-setting", "basic"],
)
def test_hostile_credentials_are_a_401_never_a_500(
    ctx: ServiceContext, authorization: bytes
) -> None:
    anonymous = TestClient(create_app(ctx))
    response = anonymous.get("/metrics", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
