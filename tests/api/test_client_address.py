"""The client address used for login throttling and the audit log: X-Forwarded-For is
believed only from GPUYARD_TRUSTED_PROXIES, under the app and under `gpuyard serve`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, authed_client, make_context, make_settings
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.api.client_address import resolve_client_ip
from gpuyard.cli.main import app as cli_app
from gpuyard.services.context import ServiceContext
from gpuyard.settings import Settings, parse_trusted_proxies

TRUSTED = parse_trusted_proxies("10.0.0.0/8, 2001:db8::/32, 192.0.2.1")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        pytest.param("1.2.3.4", ["9.9.9.9"], "1.2.3.4", id="untrusted-peer-header-ignored"),
        pytest.param("10.0.0.2", [], "10.0.0.2", id="trusted-peer-without-header"),
        pytest.param("10.0.0.2", ["203.0.113.7"], "203.0.113.7", id="one-proxy"),
        pytest.param(
            "10.0.0.2", ["9.9.9.9, 203.0.113.7"], "203.0.113.7", id="client-spoof-left-ignored"
        ),
        pytest.param(
            "10.0.0.2",
            ["9.9.9.9, 203.0.113.7, 10.1.1.1"],
            "203.0.113.7",
            id="two-proxies-right-most-untrusted",
        ),
        pytest.param(
            "10.0.0.2", ["9.9.9.9", "203.0.113.7"], "203.0.113.7", id="several-header-lines"
        ),
        pytest.param("10.0.0.2", ["10.3.3.3, 10.1.1.1"], "10.3.3.3", id="all-hops-trusted"),
        pytest.param("10.0.0.2", ["203.0.113.7, junk"], "10.0.0.2", id="proxy-wrote-nonsense"),
        pytest.param("10.0.0.2", ["203.0.113.7:5555"], "203.0.113.7", id="ipv4-with-port"),
        pytest.param("10.0.0.2", ["[2001:db9::5]:443"], "2001:db9::5", id="ipv6-with-port"),
        pytest.param("2001:db8::1", ["2001:db9::5"], "2001:db9::5", id="ipv6-proxy"),
        pytest.param("::ffff:10.0.0.2", ["203.0.113.7"], "203.0.113.7", id="ipv4-mapped-proxy"),
        pytest.param("192.0.2.1", ["203.0.113.7"], "203.0.113.7", id="single-address-proxy"),
        pytest.param("192.0.2.2", ["203.0.113.7"], "192.0.2.2", id="its-neighbour-is-not"),
        pytest.param("testclient", ["203.0.113.7"], "testclient", id="peer-not-an-address"),
        pytest.param(None, ["203.0.113.7"], None, id="no-peer"),
    ],
)
def test_the_right_most_untrusted_hop_is_the_client(
    peer: str | None, forwarded_for: list[str], expected: str | None
) -> None:
    assert resolve_client_ip(peer, forwarded_for, TRUSTED) == expected


def test_trusted_proxies_are_validated_with_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, trusted_proxies=" 127.0.0.1 ,10.0.0.0/8,::1,")
    assert [str(n) for n in settings.trusted_proxy_networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    assert Settings(data_dir=tmp_path).trusted_proxy_networks == ()  # none by default
    with pytest.raises(ValidationError, match=r"GPUYARD_TRUSTED_PROXIES: 'proxy\.lan' is neither"):
        Settings(data_dir=tmp_path, trusted_proxies="10.0.0.1,proxy.lan")


@pytest.fixture
def behind_proxy(tmp_path: Path, database_url: str | None) -> Iterator[ServiceContext]:
    settings = make_settings(
        tmp_path / "data", database_url, trusted_proxies="10.0.0.2", login_ip_max_attempts=3
    )
    context = make_context(settings)
    yield context
    context.db.dispose()


def _failed_login(client: TestClient, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    body = {"email": ADMIN_EMAIL, "password": f"wrong-{time.monotonic_ns()}"}
    return client.post("/api/v1/auth/login", json=body, headers=headers).status_code


def _audited_ips(ctx: ServiceContext, count: int) -> list[str]:
    events = authed_client(ctx).get(
        "/api/v1/audit", params={"action": "auth.login_failed", "limit": count}
    )
    return [e["ip"] for e in events.json()["data"]]


def test_a_spoofed_header_from_an_untrusted_peer_changes_nothing(
    behind_proxy: ServiceContext,
) -> None:
    attacker = TestClient(create_app(behind_proxy), client=("1.2.3.4", 4000))
    statuses = [_failed_login(attacker, f"198.51.100.{i}") for i in range(4)]
    assert statuses == [401, 401, 401, 429]  # a new X-Forwarded-For each time: no new budget
    assert _audited_ips(behind_proxy, 10) == ["1.2.3.4"] * 3


def test_the_header_from_a_trusted_proxy_names_the_client(behind_proxy: ServiceContext) -> None:
    proxy = TestClient(create_app(behind_proxy), client=("10.0.0.2", 4000))
    # One client behind the proxy, lying about itself to the left of what the proxy saw:
    first = [_failed_login(proxy, f"9.9.9.{i}, 203.0.113.7") for i in range(4)]
    assert first == [401, 401, 401, 429]
    # Another client behind the same proxy has its own budget.
    assert _failed_login(proxy, "203.0.113.8") == 401
    assert _audited_ips(behind_proxy, 10) == ["203.0.113.8"] + ["203.0.113.7"] * 3
    login = proxy.post(
        "/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert login.status_code == 200
    token = login.json()["access_token"]
    proxy.headers["Authorization"] = f"Bearer {token}"
    created = proxy.post(
        "/api/v1/tokens", json={"name": "ci"}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert created.status_code == 201
    event = authed_client(behind_proxy).get(
        "/api/v1/audit", params={"action": "token.create", "limit": 1}
    )
    assert event.json()["data"][0]["ip"] == "203.0.113.9"  # callers' actions too


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gpuyard_serve_keeps_uvicorn_from_believing_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to: run the app as
    `gpuyard serve` configures uvicorn, and spoof the header from 127.0.0.1."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: captured.update(app=app, **kwargs))
    monkeypatch.setenv("GPUYARD_ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("GPUYARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
    result = CliRunner().invoke(
        cli_app, ["serve", "--data-dir", str(tmp_path), "--no-loops", "--local-docker", "off"]
    )
    assert result.exit_code == 0, result.output
    assert captured["proxy_headers"] is False

    app = captured.pop("app")
    captured.update(port=_free_port(), log_level="error")
    server = uvicorn.Server(uvicorn.Config(app, **captured))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{captured['port']}/api/v1/auth/login"
        refused = httpx.post(
            url,
            json={"email": ADMIN_EMAIL, "password": "wrong"},
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
        assert refused.status_code == 401
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    ctx: ServiceContext = app.state.ctx
    try:
        assert _audited_ips(ctx, 1) == ["127.0.0.1"]
    finally:
        ctx.db.dispose()
