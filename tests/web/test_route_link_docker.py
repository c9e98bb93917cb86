"""A workload's routed port opened from the dashboard (issue 19): a `gpuyard serve` of its
own with per-user routing on (a real nginx, tests/support/nginx.py, whose auth_request
asks this server), a real docker agent (web/docker_cluster.py) running a busybox httpd,
and real Chromium sessions. The owner's session cookie (path /u, the same host name as
the dashboard: cookies ignore ports) opens the service through nginx from the workload
page's route link; another user's session and no session are refused by nginx, and the
service's answer never reaches them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from factories.processes import serve_processes
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.dockerd import DockerServer
from support.local_server import free_port
from support.nginx import NginxServer

from web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, VIEWPORT, LiveServer
from web.docker_cluster import DockerCluster, registered_docker_cluster, wait_running
from web.pages import LoginPage, WorkloadDetailPage, WorkloadsPage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

PORT = 8888
SERVED = "routed-ok"


@dataclass
class RoutedServer:
    """A `gpuyard serve` that publishes routes through ``nginx``, with a docker cluster."""

    server: LiveServer
    nginx: NginxServer
    cluster: DockerCluster


@pytest.fixture
def routed(
    dashboard_dist: Path, dockerd: DockerServer, nginx_server: NginxServer, tmp_path: Path
) -> Iterator[RoutedServer]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    api_port = free_port()
    env = {
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_DEMO": "false",
        "GPUYARD_LOCAL_DOCKER": "off",
        "GPUYARD_SCHEDULER_INTERVAL_S": "0.3",
        "GPUYARD_STARTER_INTERVAL_S": "0.3",
        "GPUYARD_LOGIN_IP_MAX_ATTEMPTS": "100000",
        "GPUYARD_ROUTING_NGINX_CONF": str(nginx_server.routes_conf),
        "GPUYARD_ROUTING_NGINX_PID_FILE": str(nginx_server.pid_file),
        "GPUYARD_ROUTING_NGINX_BINARY": str(nginx_server.binary),
        "GPUYARD_ROUTING_LISTEN": f"127.0.0.1:{nginx_server.port}",
        "GPUYARD_ROUTING_AUTHORIZE_URL": f"http://127.0.0.1:{api_port}",
        "GPUYARD_ROUTING_PUBLIC_URL": nginx_server.url,
        "GPUYARD_ROUTING_INTERVAL_S": "0.3",
    }
    with serve_processes(1, data_dir, None, env, ports=[api_port]) as (url,):
        server = LiveServer(url=url, admin_token="")
        server.admin_token = server.login_token(ADMIN_EMAIL, ADMIN_PASSWORD)
        # Its own host ports: the session's docker cluster (23000-23009) shares the dockerd.
        with registered_docker_cluster(
            dockerd, server, tmp_path / "agent", host_ports="23010-23019"
        ) as cluster:
            yield RoutedServer(server, nginx_server, cluster)


def _new_user(server: LiveServer, username: str) -> tuple[str, str]:
    """(e-mail, bearer token) of a new plain user."""
    email = f"{username}@example.com"
    code = server.create_invite(email)
    server.api(
        "POST",
        "/auth/register",
        json={
            "email": email,
            "password": USER_PASSWORD,
            "invite_code": code,
            "username": username,
        },
    )
    return email, server.login_token(email, USER_PASSWORD)


def _logged_in(browser: Browser, server: LiveServer, email: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(
        base_url=server.url,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        color_scheme="light",
        reduced_motion="reduce",
        locale="en-GB",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    login = LoginPage(page)
    login.open()
    login.log_in(email, USER_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    return context, page


def _wait_until_served(url: str, token: str) -> None:
    """nginx loads the route a moment after the routing loop's HUP."""
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, (response.status_code, response.text)
            return
        time.sleep(0.2)


def test_the_route_link_opens_the_service_for_its_owner_only(
    browser: Browser, routed: RoutedServer
) -> None:
    server = routed.server
    suffix = uuid.uuid4().hex[:6]
    owner_email, owner_token = _new_user(server, f"owner{suffix}")
    other_email, _ = _new_user(server, f"other{suffix}")
    script = f"mkdir -p /w && echo {SERVED} > /w/index.html && exec httpd -f -p {PORT} -h /w"
    workload = server.api(
        "POST",
        "/workloads",
        token=owner_token,
        json={
            "name": f"web-{suffix}",
            "image": routed.cluster.image,
            "command": ["sh", "-c", script],
            "cpu": 0.1,
            "ram_gb": 0.0625,
            "cluster_id": routed.cluster.id,
            "ports": [PORT],
        },
    )
    wait_running(server, workload["id"])
    route_url = f"{routed.nginx.url}/u/owner{suffix}/{workload['id']}/{PORT}/"
    deadline = time.monotonic() + 20
    while (ports := server.api("GET", f"/workloads/{workload['id']}", token=owner_token)["ports"])[
        0
    ]["route_url"] != route_url and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ports[0]["route_url"] == route_url, ports
    _wait_until_served(route_url, owner_token)

    owner_context, owner_page = _logged_in(browser, server, owner_email)
    try:
        detail = WorkloadDetailPage(owner_page)
        detail.open_workload(workload["id"])
        link = owner_page.get_by_role("link", name=f"route of port {PORT}")
        expect(link).to_have_attribute("href", route_url)
        with owner_context.expect_page() as opened:
            link.click()
        service = opened.value
        service.wait_for_load_state()
        assert service.url == route_url
        # Through nginx with the session cookie alone: the new tab sends no bearer token.
        expect(service.locator("body")).to_have_text(SERVED)
    finally:
        owner_context.close()

    other_context, other_page = _logged_in(browser, server, other_email)
    try:
        response = other_page.goto(route_url)
        assert response is not None
        assert response.status == 403
        assert SERVED not in other_page.content()
    finally:
        other_context.close()

    anonymous = browser.new_context()
    try:
        response = anonymous.new_page().goto(route_url)
        assert response is not None
        assert response.status == 401
    finally:
        anonymous.close()
