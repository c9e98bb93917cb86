"""The login flow for routes on a host name of their own, end to end: a real nginx
(tests/support/nginx.py) in front of an upstream the test serves, the real gpuyard API
(uvicorn) behind both, and a browser played by one httpx client that follows every
redirect itself, keeping cookies per host name as a browser does.

The two origins: the dashboard (GPUYARD_ROUTING_DASHBOARD_URL) is ``http://127.0.0.1:<api
port>`` and routes (GPUYARD_ROUTING_PUBLIC_URL) are ``http://localhost:<nginx port>``.
Both names reach 127.0.0.1 (servers bind nothing else), yet they are different host
names, so the browser's cookie jar keeps the dashboard's host-only cookies away from the
routing host, exactly as with ``gpuyard.example.com`` and ``apps.example.com``. (Another
port of the same name would not do: cookies ignore ports.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

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
from fastapi import FastAPI, Request
from support.local_server import free_port
from support.nginx import NginxServer

from gpuyard.api.app import create_app
from gpuyard.domain.routing import Route, RouteKey
from gpuyard.services.context import ServiceContext
from gpuyard.services.routing.config import RouteLogin, render_config
from gpuyard.services.routing.loop import nginx_target, rendered_routes
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


@pytest.fixture
def site(tmp_path: Path, database_url: str | None, nginx_server: NginxServer) -> Iterator[Site]:
    api_port = free_port()
    dashboard = f"http://127.0.0.1:{api_port}"
    routes = f"http://{ROUTING_HOST}:{nginx_server.port}"
    settings = make_settings(
        tmp_path / "data",
        database_url,
        routing_nginx_conf=nginx_server.routes_conf,
        routing_nginx_pid_file=nginx_server.pid_file,
        routing_nginx_binary=str(nginx_server.binary),
        routing_listen=f"127.0.0.1:{nginx_server.port}",
        routing_authorize_url=dashboard,
        routing_public_url=routes,
        routing_dashboard_url=dashboard,
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
            assert rendered_routes(ctx).text.count("error_page 401") == 0  # no routes yet
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


def _follow(browser: httpx.Client, url: str, hops: list[str]) -> httpx.Response:
    """GET ``url`` and follow redirects as a browser does, noting each URL visited."""
    for _ in range(10):
        hops.append(url)
        response = browser.get(url)
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        url = urljoin(url, response.headers["location"])
    raise AssertionError(f"too many redirects: {hops}")


def _log_in_on_the_dashboard(browser: httpx.Client, site: Site, email: str) -> None:
    """What the dashboard's login page does: POST the form for a session cookie."""
    login = browser.post(
        f"{site.dashboard}/api/v1/auth/login",
        json={"email": email, "password": PASSWORD, "set_cookie": True},
    )
    assert login.status_code == 200, login.text


def _open_route_logging_in(browser: httpx.Client, site: Site, email: str) -> list[str]:
    """Open the route with no credentials, log in where sent, go on: the hops visited."""
    hops: list[str] = []
    _follow(browser, site.route_url, hops)  # the login page itself: the SPA, unbuilt here
    # Sent to the dashboard's login page, which comes back to the routing login after.
    assert urlsplit(hops[-1]).path == "/login", hops
    assert hops[1].startswith(f"{site.dashboard}/api/v1/routing/login?next="), hops
    back = parse_qs(urlsplit(hops[-1]).query)["next"][0]
    assert back.startswith("/api/v1/routing/login?")
    _log_in_on_the_dashboard(browser, site, email)
    more: list[str] = []
    final = _follow(browser, f"{site.dashboard}{back}", more)
    hops.extend(more)
    hops.append(f"-> {final.status_code}")
    return hops


def _route_cookie(browser: httpx.Client) -> str:
    found = [c for c in browser.cookies.jar if c.name == "gpuyard_route"]
    assert len(found) == 1, [(c.name, c.domain, c.path) for c in browser.cookies.jar]
    assert found[0].value is not None
    return found[0].value


def test_a_browser_without_credentials_logs_in_and_sees_the_route(site: Site) -> None:
    with httpx.Client() as browser:
        hops = _open_route_logging_in(browser, site, OWNER)
        assert hops[-1] == "-> 200", hops
        assert hops[-2] == site.route_url  # back where the visitor started
        assert any(h.startswith(f"{site.routes}/_gpuyard/session?ticket=") for h in hops)

        [cookie] = [c for c in browser.cookies.jar if c.name == "gpuyard_route"]
        assert cookie.domain in (ROUTING_HOST, f"{ROUTING_HOST}.local")  # host-only
        assert not cookie.domain_specified
        assert cookie.path == "/u"
        assert not cookie.secure  # plain http here; Secure with an https routing URL
        assert cookie.has_nonstandard_attr("HttpOnly")
        # The dashboard's cookies stayed on the dashboard's host name.
        for other in browser.cookies.jar:
            if other.name != "gpuyard_route":
                assert other.domain.startswith("127.0.0.1"), (other.name, other.domain)

        seen = browser.get(f"{site.route_url}lab")
        assert seen.status_code == 200, seen.text
        assert seen.json()["path"] == "/lab"
        assert seen.json()["cookie"] is None  # nginx stripped the route cookie


def test_a_replayed_ticket_is_refused(site: Site) -> None:
    with httpx.Client() as browser:
        hops = _open_route_logging_in(browser, site, OWNER)
        [ticket_url] = [h for h in hops if "/_gpuyard/session?ticket=" in h]
    with httpx.Client() as thief:
        replay = thief.get(ticket_url)
        assert replay.status_code == 401, replay.text
        assert replay.json()["errors"][0]["field"] == "ticket"
        assert "used already" in replay.json()["detail"]
        assert "gpuyard_route" not in replay.headers.get("set-cookie", "")


def test_next_outside_the_routing_url_is_refused(site: Site) -> None:
    token = mint_token(site.ctx, site.owner_id)
    with httpx.Client(cookies={"gpuyard_session": token}) as browser:
        for bad in (
            "https://evil.example/u/x/",
            f"{site.dashboard}/u/x/",  # the dashboard is not the routing host
            f"{site.routes}/api/v1/auth/me",  # the routing host, not a route
            f"{site.routes}/u/../api/v1/auth/me",
            f"{site.routes}//evil.example/u/",
            f"{site.routes}/u/a\\b",
            "//localhost/u/",
            "",
            f"{site.routes}/u/{'a' * 3000}",
        ):
            response = browser.get(
                f"{site.dashboard}/api/v1/routing/login?" + urlencode({"next": bad})
            )
            assert response.status_code == 422, (bad, response.status_code, response.text)
            fields = [e.get("field") or e.get("loc") for e in response.json().get("errors", [])]
            assert any("next" in str(f) for f in fields), (bad, response.json())
            assert "location" not in response.headers


def test_another_users_route_is_403_after_their_login(site: Site) -> None:
    with httpx.Client() as browser:
        hops = _open_route_logging_in(browser, site, OTHER)
        assert hops[-1] == "-> 403", hops


def test_the_route_cookie_is_refused_by_the_api(site: Site) -> None:
    with httpx.Client() as browser:
        _open_route_logging_in(browser, site, OWNER)
        route_token = _route_cookie(browser)
    me = f"{site.dashboard}/api/v1/auth/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {route_token}"}).status_code == 401
    assert httpx.get(me, cookies={"gpuyard_session": route_token}).status_code == 401
    assert httpx.get(me, cookies={"gpuyard_route": route_token}).status_code == 401
    # ...and it is no ticket either.
    again = httpx.get(f"{site.dashboard}/api/v1/routing/session?ticket={route_token}")
    assert again.status_code == 401


def test_logging_out_of_the_dashboard_ends_the_route_cookie(site: Site) -> None:
    with httpx.Client() as browser:
        hops = _open_route_logging_in(browser, site, OWNER)
        assert hops[-1] == "-> 200", hops
        csrf = browser.cookies.get("gpuyard_csrf", domain="127.0.0.1") or ""
        out = browser.post(f"{site.dashboard}/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code in (200, 204), out.text
        again = browser.get(site.route_url)
        assert again.status_code == 302  # back to the login
        assert again.headers["location"].startswith(f"{site.dashboard}/api/v1/routing/login?")


def test_a_disabled_account_loses_the_route(site: Site) -> None:
    with httpx.Client() as browser:
        hops = _open_route_logging_in(browser, site, OWNER)
        assert hops[-1] == "-> 200", hops
        admin = mint_token(site.ctx, user_id_of(site.ctx, ADMIN_EMAIL))
        disabled = httpx.patch(
            f"{site.dashboard}/api/v1/users/{site.owner_id}",
            json={"is_active": False},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert disabled.status_code == 200, disabled.text
        again = browser.get(site.route_url)
        assert again.status_code == 302  # refused (401), so sent to log in again
