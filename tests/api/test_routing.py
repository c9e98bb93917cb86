"""Per-user routing end to end: a real nginx (tests/support/nginx.py) in front of a real
upstream (HTTP and WebSocket, served by the test), asking the real gpuyard API (uvicorn)
through auth_request. The owner gets through, another user gets 403, nobody 401."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.app import (
    ADMIN_EMAIL,
    add_user,
    make_context,
    make_settings,
    mint_token,
    settle,
    user_id_of,
)
from factories.live import served
from fastapi import FastAPI, Request, Response, WebSocket
from support.local_server import free_port
from support.nginx import NginxServer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gpuyard.api.app import create_app
from gpuyard.domain.routing import Route, RouteKey
from gpuyard.services.context import ServiceContext
from gpuyard.services.routing.config import render_config
from gpuyard.services.routing.loop import nginx_target, rendered_routes
from gpuyard.services.routing.nginx import install_config

OWNER = "owner@example.com"
OTHER = "other@example.com"
PASSWORD = "correct-horse-battery"
PORT = 8888


def upstream_app() -> FastAPI:
    """What a workload serves: echoes what reached it, and a WebSocket echo."""
    app = FastAPI()

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"echo:{text}")
        await websocket.close()

    @app.get("/plant-cookies")
    async def plant(response: Response) -> dict[str, str]:
        response.set_cookie("gpuyard_csrf", "planted", path="/")
        response.set_cookie("gpuyard_session", "planted", path="/api", domain="127.0.0.1")
        return {"planted": "yes"}

    @app.get("/{path:path}")
    async def seen(request: Request, path: str) -> dict[str, Any]:
        return {
            "path": f"/{path}",
            "query": request.url.query,
            "cookie": request.headers.get("cookie"),
            "authorization": request.headers.get("authorization"),
            "prefix": request.headers.get("x-forwarded-prefix"),
        }

    return app


@dataclass(frozen=True)
class Routed:
    ctx: ServiceContext
    api: str
    nginx: NginxServer
    owner_token: str
    other_id: str
    other_token: str
    admin_token: str
    workload_id: str
    path: str  # the route's path, /u/<user>/<workload>/<port>/

    @property
    def url(self) -> str:
        return f"{self.nginx.url}{self.path}"


@pytest.fixture
def routed(tmp_path: Path, database_url: str | None, nginx_server: NginxServer) -> Iterator[Routed]:
    api_port = free_port()
    settings = make_settings(
        tmp_path / "data",
        database_url,
        routing_nginx_conf=nginx_server.routes_conf,
        routing_nginx_pid_file=nginx_server.pid_file,
        routing_nginx_binary=str(nginx_server.binary),
        routing_listen=f"127.0.0.1:{nginx_server.port}",
        routing_authorize_url=f"http://127.0.0.1:{api_port}",
        routing_public_url=nginx_server.url,
    )
    ctx = make_context(settings)
    try:
        owner_id = add_user(ctx, OWNER, PASSWORD)
        other_id = add_user(ctx, OTHER, PASSWORD)
        app = create_app(ctx)
        with served(app, api_port) as api, served(upstream_app()) as upstream:
            owner_token = mint_token(ctx, owner_id)
            created = httpx.post(
                f"{api}/api/v1/workloads",
                json={
                    "name": "notebook",
                    "image": "jupyter",
                    "cpu": 1,
                    "ram_gb": 1,
                    "ports": [PORT],
                },
                headers={"Authorization": f"Bearer {owner_token}"},
            )
            assert created.status_code == 201, created.text
            workload_id = created.json()["id"]
            settle(ctx)
            # The demo cluster's servers are simulated (no host ports, so the loop routes
            # nothing there): route the port to the upstream the test serves.
            key = RouteKey(owner_id, workload_id, PORT)
            host, port = upstream.removeprefix("http://").split(":")
            config = rendered_routes(ctx)
            assert config.routes == ()  # nothing published on simulated servers
            text = render_config(
                [Route(key, host, int(port))],
                listen=settings.routing_listen,
                authorize_base=settings.routing_authorize_url,
            ).text
            target = nginx_target(ctx)
            assert target is not None
            old_workers = nginx_server.worker_pids()
            assert install_config(target, text) is True
            nginx_server.wait_for_reload(old_workers)
            routed = Routed(
                ctx,
                api,
                nginx_server,
                owner_token,
                other_id,
                mint_token(ctx, other_id),
                mint_token(ctx, _admin_id(ctx)),
                workload_id,
                key.path,
            )
            _wait_until_routed(routed)
            yield routed
    finally:
        ctx.db.dispose()


def _admin_id(ctx: ServiceContext) -> str:
    return user_id_of(ctx, ADMIN_EMAIL)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait_until_routed(routed: Routed) -> None:
    """nginx loads a config a moment after the HUP (until then the route is a 404), and
    the first authorization may wait on a new database connection: wait for the owner's
    first 200."""
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(routed.url, headers=_bearer(routed.owner_token), timeout=10)
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, f"never routed: {response.status_code} {response.text}"
        time.sleep(0.05)


def test_the_owner_gets_through_with_a_bearer_token(routed: Routed) -> None:
    response = httpx.get(f"{routed.url}lab/tree?x=1", headers=_bearer(routed.owner_token))
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["path"] == "/lab/tree"  # the route's prefix is stripped...
    assert seen["query"] == "x=1"
    assert seen["prefix"] == routed.path  # ...and said
    assert seen["authorization"] is None  # the workload never sees the visitor's token


def test_a_workload_cannot_plant_cookies_outside_its_route(routed: Routed) -> None:
    response = httpx.get(f"{routed.url}plant-cookies", headers=_bearer(routed.owner_token))
    assert response.status_code == 200, response.text
    planted = response.headers.get_list("set-cookie")
    assert len(planted) == 2
    for cookie in planted:
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert f"path={routed.path}".lower() in attributes, cookie
        assert "path=/" not in attributes
        assert "path=/api" not in attributes


def test_another_user_gets_403_and_nobody_401(routed: Routed) -> None:
    other = httpx.get(routed.url, headers=_bearer(routed.other_token))
    assert other.status_code == 403
    anonymous = httpx.get(routed.url)
    assert anonymous.status_code == 401
    forged = httpx.get(routed.url, headers=_bearer("not-a-token"))
    assert forged.status_code == 401


def test_an_admin_gets_through_as_the_policy_allows(routed: Routed) -> None:
    assert httpx.get(routed.url, headers=_bearer(routed.admin_token)).status_code == 200


def test_the_dashboard_session_cookie_reaches_routes_but_not_the_workload(
    routed: Routed,
) -> None:
    with httpx.Client() as browser:  # one cookie jar: ports do not separate cookies
        login = browser.post(
            f"{routed.api}/api/v1/auth/login",
            json={"email": OWNER, "password": PASSWORD, "set_cookie": True},
        )
        assert login.status_code == 200, login.text
        paths = {c.path for c in browser.cookies.jar if c.name == "gpuyard_session"}
        assert paths == {"/api", "/u"}
        browser.cookies.set("theme", "dark", domain="127.0.0.1", path="/")
        response = browser.get(routed.url)
        assert response.status_code == 200, response.text
        cookie = response.json()["cookie"]
        assert cookie is not None
        assert "theme=dark" in cookie
        assert "gpuyard_" not in cookie  # neither the session nor the CSRF cookie

        browser.post(
            f"{routed.api}/api/v1/auth/logout",
            headers={"X-CSRF-Token": browser.cookies.get("gpuyard_csrf", path="/") or ""},
        )
        assert not [c for c in browser.cookies.jar if c.name == "gpuyard_session"]
        assert browser.get(routed.url).status_code == 401


def test_websockets_pass_for_the_owner_only(routed: Routed) -> None:
    ws_url = routed.url.replace("http://", "ws://") + "ws"
    with connect(ws_url, additional_headers=_bearer(routed.owner_token)) as socket:
        socket.send("hello")
        assert socket.recv(timeout=5) == "echo:hello"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers=_bearer(routed.other_token))
    assert refused.value.response.status_code == 403


def test_a_dot_dot_path_to_someone_elses_route_is_judged_as_that_route(routed: Routed) -> None:
    """nginx matches locations on the normalised URI: the check must be about the route
    that matched, not the raw URI the client sent. The other user starts a workload of
    their own and dresses a path to the owner's route up as a path under theirs."""
    created = httpx.post(
        f"{routed.api}/api/v1/workloads",
        json={"image": "jupyter", "cpu": 1, "ram_gb": 1, "ports": [PORT]},
        headers=_bearer(routed.other_token),
    )
    assert created.status_code == 201, created.text
    settle(routed.ctx)
    own_path = f"/u/{routed.other_id}/{created.json()['id']}/{PORT}/"
    own = httpx.get(
        f"{routed.api}/api/v1/routing/authorize",
        headers={**_bearer(routed.other_token), "X-Original-URI": own_path},
    )
    assert own.status_code == 204  # their own route is theirs to open

    raw = f"{own_path}../../../..{routed.path}"
    connection = http.client.HTTPConnection("127.0.0.1", routed.nginx.port, timeout=5)
    try:
        connection.request("GET", raw, headers=_bearer(routed.other_token))
        response = connection.getresponse()
        assert response.status == 403, response.read()
    finally:
        connection.close()


def test_a_stopped_workload_is_no_longer_reachable(routed: Routed) -> None:
    stopped = httpx.post(
        f"{routed.api}/api/v1/workloads/{routed.workload_id}/stop",
        headers=_bearer(routed.owner_token),
    )
    assert stopped.status_code == 200, stopped.text
    settle(routed.ctx)
    assert httpx.get(routed.url, headers=_bearer(routed.owner_token)).status_code == 403


def test_workload_ports_show_the_route_url(routed: Routed) -> None:
    body = httpx.get(
        f"{routed.api}/api/v1/workloads/{routed.workload_id}",
        headers=_bearer(routed.owner_token),
    ).json()
    # Simulated servers publish no host port, so there is no route to show.
    assert body["ports"] == [
        {"container_port": PORT, "host_port": None, "url": None, "route_url": None}
    ]
    assert json.dumps(body)  # a plain JSON body
