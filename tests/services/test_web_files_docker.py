"""A web image serves the files a user uploads (issue 16, the seed's nginx case) on a real
agent over the session's dockerd, loops ticked by hand: an operator's catalog image "web"
(busybox's httpd serving /srv/www on 8080); a user launches it by image_id, uploads
index.html through the API and reads it back from the container's published port; after
``docker rm -f`` and reconcile's recovery, the same URL serves the same bytes; a warm
pool container mounted at /srv/www serves a catalog launch at once. On SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories.app import (
    add_user,
    admin_caller,
    authed_client,
    make_context,
    make_settings,
    mint_token,
    settle,
)
from factories.docker_fleet import docker_fleet
from fastapi.testclient import TestClient
from support.dockerd import DockerServer

from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.specs import PoolDefinition, create_pool
from gpuyard.services.pools.tending import tend_pools
from gpuyard.services.workloads.submission import list_workload_events

WEB_ROOT = "/srv/www"
PAGE = b"<!doctype html><h1>hello from /srv/www</h1>\n"
SERVE = ["httpd", "-f", "-p", "8080", "-h", WEB_ROOT]
CPU = 0.1
RAM_GB = 0.0625


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(tmp_path / "data", url, demo=False, stop_grace_period_s=0.0)
    context = make_context(settings)
    yield context
    context.db.dispose()


def _get(url: str) -> httpx.Response:
    """The first answer of a server that may still be starting."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _web_image(admin: TestClient, dockerd: DockerServer) -> str:
    """The operator's catalog entry: busybox's httpd, files at /srv/www, port 8080."""
    image = admin.post(
        "/api/v1/images",
        json={
            "name": "web",
            "reference": dockerd.image,
            "type": "web",
            "default_port": 8080,
            "cpu": CPU,
            "ram_gb": RAM_GB,
            "files_path": WEB_ROOT,
        },
    )
    assert image.status_code == 201, image.text
    return str(image.json()["id"])


def test_a_web_image_serves_the_uploaded_file_and_again_after_recovery(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    user_id = add_user(ctx, "dana@example.com", "pw-dana-123456")
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx) as admin,
        authed_client(ctx, mint_token(ctx, user_id)) as user,
    ):
        image_id = _web_image(admin, dockerd)
        launched = user.post(
            "/api/v1/workloads", json={"image_id": image_id, "name": "site", "command": SERVE}
        )
        assert launched.status_code == 201, launched.text
        workload_id = launched.json()["id"]
        assert launched.json()["files_path"] == WEB_ROOT
        settle(ctx)
        start_scheduled(ctx)

        answer = user.get(f"/api/v1/workloads/{workload_id}").json()
        assert answer["status"] == "running", answer
        (port,) = answer["ports"]
        assert port["container_port"] == 8080
        host_port = port["host_port"]
        assert host_port is not None
        (container,) = fleet.containers(workload_id)
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert set(mounts) == {WEB_ROOT}  # mounted where the image says, nowhere else
        assert mounts[WEB_ROOT]["RW"] is True

        upload = user.put(f"/api/v1/workloads/{workload_id}/files/index.html", content=PAGE)
        assert upload.status_code in (200, 201), upload.text
        url = f"http://127.0.0.1:{host_port}/index.html"
        served = _get(url)
        assert served.status_code == 200
        assert served.content == PAGE

        container.remove(force=True)  # docker rm -f
        reconcile_servers(ctx)  # one reconcile tick recreates it from its recorded spec

        (recreated,) = fleet.containers(workload_id)
        assert recreated.id != container.id
        assert recreated.status == "running"
        assert {m["Destination"] for m in recreated.attrs["Mounts"]} == {WEB_ROOT}
        again = _get(url)
        assert again.status_code == 200
        assert again.content == PAGE
        events, _count = list_workload_events(ctx, admin_caller(ctx), workload_id, 100, 0)
        assert any("recreated from its recorded spec" in (e.reason or "") for e in events)
        assert user.get(f"/api/v1/workloads/{workload_id}").json()["status"] == "running"


def test_a_catalog_launch_claims_a_warm_container_mounted_where_it_asks(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    """Pools match on the launch's resulting values, files_path included: a warm
    container of a /srv/www pool serves the catalog launch's upload at once; a launch of
    the same image with its files at /workspace starts cold."""
    user_id = add_user(ctx, "erin@example.com", "pw-erin-123456")
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx) as admin,
        authed_client(ctx, mint_token(ctx, user_id)) as user,
    ):
        image_id = _web_image(admin, dockerd)
        pool = PoolDefinition(
            name="web", image_type="web", image=dockerd.image, server_id=fleet.servers["host-a"],
            cluster_id=None, target_size=1, port_min=42100, port_max=42199, container_port=8080,
            cpu=CPU, ram_gb=RAM_GB, storage_gb=0, command=SERVE, files_path=WEB_ROOT,
        )  # fmt: skip
        create_pool(ctx, admin_caller(ctx), pool)
        for _ in range(4):  # pool loop, scheduler and starter until the pool is warm
            tend_pools(ctx)
            settle(ctx)
            start_scheduled(ctx)

        elsewhere = user.post(
            "/api/v1/workloads",
            json={"image_id": image_id, "command": SERVE, "files_path": "/workspace"},
        )
        assert elsewhere.status_code == 201, elsewhere.text
        assert elsewhere.json()["from_pool"] is False

        claimed = user.post("/api/v1/workloads", json={"image_id": image_id, "command": SERVE})
        assert claimed.status_code == 201, claimed.text
        answer = claimed.json()
        assert answer["from_pool"] is True
        assert answer["status"] == "running"
        assert answer["files_path"] == WEB_ROOT
        (container,) = fleet.containers(answer["id"])
        assert {m["Destination"] for m in container.attrs["Mounts"]} == {WEB_ROOT}
        upload = user.put(f"/api/v1/workloads/{answer['id']}/files/index.html", content=PAGE)
        assert upload.status_code in (200, 201), upload.text
        served = _get(f"http://127.0.0.1:{answer['ports'][0]['host_port']}/index.html")
        assert served.content == PAGE
