"""A gpuyard API and a real nginx serving one route on a host name of its own, with the
login flow configured: the dashboard at ``http://127.0.0.1:<api port>``, routes at
``http://localhost:<nginx port>``. Both names reach 127.0.0.1 (servers bind nothing
else) yet are different host names, so a browser (or httpx's cookie jar) keeps the
dashboard's host-only cookies away from the routing host, as with
``gpuyard.example.com`` and ``apps.example.com``; another port of the same name would
not do (cookies ignore ports). Used by tests/api/test_routing_login.py and the browser
test in tests/web."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from support.local_server import free_port
from support.nginx import NginxServer

from factories.app import add_user, make_context, make_settings, mint_token, settle
from factories.live import served
from gpuyard.api.app import create_app
from gpuyard.domain.routing import Route, RouteKey
from gpuyard.services.context import ServiceContext
from gpuyard.services.routing.config import RouteLogin, render_config
from gpuyard.services.routing.loop import nginx_target
from gpuyard.services.routing.nginx import install_config

OWNER = "owner@example.com"
OTHER = "other@example.com"
PASSWORD = "correct-horse-battery"
PORT = 8888
ROUTING_HOST = "localhost"


def upstream_app() -> FastAPI:
    """What a workload serves: says what reached it."""
    app = FastAPI()

    @app.get("/{path:path}")
    async def seen(request: Request, path: str) -> dict[str, Any]:
        return {"path": f"/{path}", "cookie": request.headers.get("cookie")}

    return app


@dataclass(frozen=True)
class Site:
    ctx: ServiceContext
    dashboard: str  # http://127.0.0.1:<api port>
    routes: str  # http://localhost:<nginx port>
    path: str  # the owner's route, /u/<user>/<workload>/<port>/
    owner_id: str
    other_id: str

    @property
    def route_url(self) -> str:
        return f"{self.routes}{self.path}"


@contextmanager
def routing_site(
    data_dir: Path, database_url: str | None, nginx_server: NginxServer, **settings_values: Any
) -> Iterator[Site]:
    """The site, torn down on leaving."""
    api_port = free_port()
    dashboard = f"http://127.0.0.1:{api_port}"
    routes = f"http://{ROUTING_HOST}:{nginx_server.port}"
    settings = make_settings(
        data_dir,
        database_url,
        routing_nginx_conf=nginx_server.routes_conf,
        routing_nginx_pid_file=nginx_server.pid_file,
        routing_nginx_binary=str(nginx_server.binary),
        routing_listen=f"127.0.0.1:{nginx_server.port}",
        routing_authorize_url=dashboard,
        routing_public_url=routes,
        routing_dashboard_url=dashboard,
        **settings_values,
    )
    ctx = make_context(settings)
    try:
        owner_id = add_user(ctx, OWNER, PASSWORD)
        other_id = add_user(ctx, OTHER, PASSWORD)
        with served(create_app(ctx), api_port), served(upstream_app()) as upstream:
            created = httpx.post(
                f"{dashboard}/api/v1/workloads",
                json={"name": "nb", "image": "jupyter", "cpu": 1, "ram_gb": 1, "ports": [PORT]},
                headers={"Authorization": f"Bearer {mint_token(ctx, owner_id)}"},
            )
            assert created.status_code == 201, created.text
            settle(ctx)
            # Simulated servers publish no host port: route the port to the test's upstream,
            # rendered as the loop renders it (the login flow included).
            key = RouteKey(owner_id, created.json()["id"], PORT)
            host, port = upstream.removeprefix("http://").split(":")
            text = render_config(
                [Route(key, host, int(port))],
                listen=settings.routing_listen,
                authorize_base=settings.routing_authorize_url,
                login=RouteLogin(routes, dashboard),
            ).text
            target = nginx_target(ctx)
            assert target is not None
            old_workers = nginx_server.worker_pids()
            assert install_config(target, text) is True
            nginx_server.wait_for_reload(old_workers)
            found = Site(ctx, dashboard, routes, key.path, owner_id, other_id)
            _wait_until_routed(found, mint_token(ctx, owner_id))
            yield found
    finally:
        ctx.db.dispose()


def _wait_until_routed(site: Site, token: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(site.route_url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, f"never routed: {response.status_code}"
        time.sleep(0.05)
