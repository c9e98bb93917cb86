"""A real Chromium opens a route on a routing host of its own without credentials: nginx
sends it to the dashboard's login page, it logs in there, the page goes on (a full page
load) to the routing login, and the browser lands on the route with a cookie for the
routing host only (tests/factories/routing_site.py: dashboard on 127.0.0.1, routes on
localhost)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from factories.routing_site import OWNER, PASSWORD, routing_site
from playwright.sync_api import Browser, expect
from support.nginx import NginxServer

from web.pages import LoginPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_a_browser_logs_in_through_the_dashboard_and_sees_the_route(
    browser: Browser, dashboard_dist: Path, nginx_server: NginxServer, tmp_path: Path
) -> None:
    assert (dashboard_dist / "index.html").exists()
    with routing_site(tmp_path / "data", None, nginx_server) as site:
        context = browser.new_context(base_url=site.dashboard)
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            page.goto(site.route_url)
            login = LoginPage(page)
            expect(page).to_have_url(re.compile(rf"^{re.escape(site.dashboard)}/login\?next="))
            login.log_in(OWNER, PASSWORD)
            expect(page).to_have_url(site.route_url)
            seen = json.loads(page.locator("body").inner_text())
            assert seen["path"] == "/"
            assert seen["cookie"] is None  # nginx kept gpuyard's cookies from the workload

            cookies = {(c["name"], c["domain"], c["path"]) for c in context.cookies()}
            assert ("gpuyard_route", "localhost", "/u") in cookies
            # The dashboard's session stayed on the dashboard's host name.
            assert {d for n, d, _ in cookies if n == "gpuyard_session"} == {"127.0.0.1"}
            [route] = [c for c in context.cookies() if c["name"] == "gpuyard_route"]
            assert route["httpOnly"] is True
            assert route["sameSite"] == "Lax"

            # Opening the route again needs no login: the cookie does it.
            page.goto(f"{site.route_url}again")
            expect(page).to_have_url(f"{site.route_url}again")
        finally:
            context.close()
