"""Sessions: login throttling, logout revocation, expiry, and the dashboard's cookie
session with CSRF protection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories.app import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    authed_client,
    login,
    make_context,
    make_settings,
    sqlite_only,
)
from factories.clock import ManualClock
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[tuple[ServiceContext, ManualClock]]:
    """SQLite is enough here: the throttle lives in the process, not the database."""
    settings = make_settings(
        tmp_path / "data",
        None,
        login_account_max_failures=3,
        login_account_window_s=300,
        login_ip_max_attempts=8,
        login_ip_window_s=60,
    )
    context = make_context(settings)
    clock = ManualClock(datetime.now(UTC))
    context.clock = clock
    yield context, clock
    context.db.dispose()


def _login(client: TestClient, email: str, password: str) -> int:
    return client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}
    ).status_code


def test_failed_logins_on_one_account_are_throttled(
    throttled: tuple[ServiceContext, ManualClock],
) -> None:
    ctx, clock = throttled
    client = TestClient(create_app(ctx))
    assert [_login(client, ADMIN_EMAIL, "wrong") for _ in range(3)] == [401, 401, 401]
    refused = client.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert refused.status_code == 429  # even the right password, until the window passes
    assert 1 <= int(refused.headers["retry-after"]) <= 300
    assert refused.json()["title"] == "Too many requests"

    clock.advance(301)
    assert _login(client, ADMIN_EMAIL, ADMIN_PASSWORD) == 200


def test_unknown_accounts_are_throttled_the_same_way(
    throttled: tuple[ServiceContext, ManualClock],
) -> None:
    ctx, _clock = throttled
    client = TestClient(create_app(ctx))
    known = [_login(client, ADMIN_EMAIL, "wrong") for _ in range(4)]
    unknown = [_login(client, "ghost@example.com", "wrong") for _ in range(4)]
    assert known == unknown == [401, 401, 401, 429]


def test_attempts_from_one_address_are_throttled(
    throttled: tuple[ServiceContext, ManualClock],
) -> None:
    ctx, clock = throttled
    client = TestClient(create_app(ctx))
    statuses = [_login(client, f"user{i}@example.com", "wrong") for i in range(9)]
    assert statuses == [401] * 8 + [429]
    refused = client.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    clock.advance(61)
    assert _login(client, ADMIN_EMAIL, ADMIN_PASSWORD) == 200


def test_a_success_clears_the_account_failures(
    throttled: tuple[ServiceContext, ManualClock],
) -> None:
    ctx, _clock = throttled
    client = TestClient(create_app(ctx))
    assert [_login(client, ADMIN_EMAIL, "wrong") for _ in range(2)] == [401, 401]
    assert _login(client, ADMIN_EMAIL, ADMIN_PASSWORD) == 200
    assert [_login(client, ADMIN_EMAIL, "wrong") for _ in range(3)] == [401, 401, 401]


def test_logout_revokes_that_session_only(client: TestClient, ctx: ServiceContext) -> None:
    other_session = authed_client(ctx)
    assert client.post("/api/v1/auth/logout").status_code == 204
    refused = client.get("/api/v1/auth/me")
    assert refused.status_code == 401
    assert "logged out" in refused.json()["detail"]
    assert other_session.get("/api/v1/auth/me").status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 401


def test_an_expired_session_is_refused(throttled: tuple[ServiceContext, ManualClock]) -> None:
    ctx, clock = throttled
    client = authed_client(ctx)
    assert client.get("/api/v1/auth/me").status_code == 200
    clock.advance(ctx.settings.access_token_minutes * 60 + 1)
    refused = client.get("/api/v1/auth/me")
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


def _cookie_login(client: TestClient) -> str:
    response = client.post(
        "/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "set_cookie": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"] is None  # the JWT is only in the httpOnly cookie
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("gpuyard_session="))
    assert "HttpOnly" in session
    assert "samesite=strict" in session.lower()
    assert "Path=/api" in session
    csrf = next(c for c in cookies if c.startswith("gpuyard_csrf="))
    assert "HttpOnly" not in csrf
    token: str = body["csrf_token"]
    assert csrf.startswith(f"gpuyard_csrf={token};")
    return token


@sqlite_only
def test_cookie_session_needs_the_csrf_header_for_changes(ctx: ServiceContext) -> None:
    browser = TestClient(create_app(ctx))
    csrf = _cookie_login(browser)
    assert browser.get("/api/v1/auth/me").json()["email"] == ADMIN_EMAIL  # reads need none

    body = {"image": "busybox"}
    missing = browser.post("/api/v1/workloads", json=body)
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["detail"]
    wrong = browser.post("/api/v1/workloads", json=body, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    assert browser.get("/api/v1/workloads").json()["count"] == 0

    created = browser.post("/api/v1/workloads", json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text

    assert browser.post("/api/v1/auth/logout").status_code == 403
    assert browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert "gpuyard_session" not in browser.cookies
    assert browser.get("/api/v1/auth/me").status_code == 401


@sqlite_only
def test_a_bearer_token_needs_no_csrf_header(ctx: ServiceContext) -> None:
    # Browsers never attach Authorization headers on their own, so CSRF cannot ride them.
    token = login(TestClient(create_app(ctx)))
    client = authed_client(ctx, token)
    assert client.post("/api/v1/workloads", json={"image": "busybox"}).status_code == 201


@sqlite_only
def test_a_cookie_session_websocket_must_come_from_this_servers_pages(
    ctx: ServiceContext,
) -> None:
    # The dashboard's terminal opens the exec socket with the session cookie (browsers send
    # it on a same-origin WebSocket and cannot set headers there); a page on another site
    # would send the cookie too, so the Origin decides (cross-site WebSocket hijacking).
    browser = TestClient(create_app(ctx))
    _cookie_login(browser)
    exec_path = "/api/v1/workloads/no-such-workload/exec"

    for foreign in ("http://evil.example", "http://testserver.evil.example", "null"):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            browser.websocket_connect(exec_path, headers={"Origin": foreign}) as socket,
        ):
            socket.receive_text()
        assert refused.value.code == 1008, foreign
        assert "this server's pages" in refused.value.reason

    # From its own pages the session is the caller: the socket opens, and the answer is
    # about the workload (there is none), not about credentials.
    with browser.websocket_connect(exec_path, headers={"Origin": "http://testserver"}) as socket:
        error = socket.receive_json()
    assert error["type"] == "error"
    assert error["status"] == 404
