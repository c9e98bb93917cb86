"""The login flow for routes on a host name of their own, end to end: a real nginx
(tests/support/nginx.py) in front of an upstream the test serves, the real gpuyard API
(uvicorn) behind both, and a browser played by one httpx client that follows every
redirect itself, keeping cookies per host name as a browser does. The two origins
(tests/factories/routing_site.py): the dashboard is ``http://127.0.0.1:<api port>``,
routes are ``http://localhost:<nginx port>``: two host names, like
``gpuyard.example.com`` and ``apps.example.com``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from factories.app import ADMIN_EMAIL, mint_token, user_id_of
from factories.routing_site import OTHER, OWNER, PASSWORD, ROUTING_HOST, Site, routing_site
from support.nginx import NginxServer


@pytest.fixture
def site(tmp_path: Path, database_url: str | None, nginx_server: NginxServer) -> Iterator[Site]:
    with routing_site(tmp_path / "data", database_url, nginx_server) as found:
        yield found


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
