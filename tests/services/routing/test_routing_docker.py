"""Per-user routing over a real docker server: the routing loop's tick publishes a running
container's port through a real nginx, the API and the CLI show its route URL, and the
route goes away when the workload stops. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories.app import authed_client, make_context, make_settings, settle
from factories.docker_fleet import docker_fleet
from factories.live import served
from support.dockerd import DockerServer
from support.local_server import free_port
from support.nginx import NginxServer

from gpuyard.api.app import create_app
from gpuyard.cli.client_commands import describe_lines
from gpuyard.services.background import build_loops
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.routing.loop import publish_routes

PORT = 8888


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(
    request: pytest.FixtureRequest, tmp_path: Path, nginx_server: NginxServer
) -> Iterator[ServiceContext]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    api = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(
        tmp_path / "data",
        url,
        demo=False,
        routing_nginx_conf=nginx_server.routes_conf,
        routing_nginx_pid_file=nginx_server.pid_file,
        routing_nginx_binary=str(nginx_server.binary),
        routing_listen=f"127.0.0.1:{nginx_server.port}",
        routing_authorize_url=api,
        # The login flow (services/routing/login.py): the loop renders its redirect.
        routing_public_url=nginx_server.url.replace("127.0.0.1", "localhost"),
        routing_dashboard_url=api,
    )
    context = make_context(settings)
    yield context
    context.db.dispose()


def _get_until(url: str, token: str, want: int) -> httpx.Response:
    """nginx loads a new config a moment after its HUP."""
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        if response.status_code == want or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_the_routing_tick_publishes_a_running_containers_port(
    ctx: ServiceContext, dockerd: DockerServer, nginx_server: NginxServer, tmp_path: Path
) -> None:
    assert [loop.name for loop in build_loops(ctx) if loop.name == "routing"] == ["routing"]
    api_base = ctx.settings.routing_authorize_url
    api_port = int(api_base.rsplit(":", 1)[1])
    with (
        docker_fleet(ctx, dockerd, tmp_path / "agents", ["host-a"]),
        served(create_app(ctx), api_port),
        authed_client(ctx) as admin,
    ):
        token = admin.headers["Authorization"].removeprefix("Bearer ")
        script = "mkdir -p /w && echo routed-ok > /w/index.html && exec httpd -f -p 8888 -h /w"
        created = admin.post(
            "/api/v1/workloads",
            json={
                "name": "web",
                "image": dockerd.image,
                "command": ["sh", "-c", script],
                "cpu": 0.1,
                "ram_gb": 0.0625,
                "ports": [PORT],
            },
        )
        assert created.status_code == 201, created.text
        workload_id = created.json()["id"]
        settle(ctx)
        assert start_scheduled(ctx) == 1
        settle(ctx)

        old_workers = nginx_server.worker_pids()
        assert publish_routes(ctx) is True
        nginx_server.wait_for_reload(old_workers)
        assert publish_routes(ctx) is False  # nothing changed: no rewrite, no reload
        body = admin.get(f"/api/v1/workloads/{workload_id}").json()
        assert body["status"] == "running", body["reason"]
        [port] = body["ports"]
        me = admin.get("/api/v1/auth/me").json()
        assert me["username"] == "admin"  # the route names its owner by username
        expected = f"{ctx.settings.routing_public_url}/u/admin/{workload_id}/{PORT}/"
        assert port["route_url"] == expected
        assert f"Route:       {expected}" in describe_lines(body)

        # A visitor without credentials is sent to the dashboard's login for the route.
        anonymous = httpx.get(expected.replace("localhost", "127.0.0.1"))
        assert anonymous.status_code == 302
        assert anonymous.headers["location"].startswith(f"{api_base}/api/v1/routing/login?next=")
        response = _get_until(expected, token, 200)
        assert response.status_code == 200, response.text
        assert response.text.strip() == "routed-ok"  # from the container, through nginx

        stopped = admin.post(f"/api/v1/workloads/{workload_id}/stop")
        assert stopped.status_code == 200, stopped.text
        settle(ctx)
        old_workers = nginx_server.worker_pids()
        assert publish_routes(ctx) is True  # the route is gone from the config
        nginx_server.wait_for_reload(old_workers)
        assert f"/{workload_id}/" not in nginx_server.routes_conf.read_text()
        assert _get_until(expected, token, 404).status_code == 404
