"""The routing config against Debian's real nginx: whatever names users choose, the
rendered file passes ``nginx -t``; a refused candidate never replaces the live config."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.local_server import ServerUnavailable
from support.nginx import NginxServer, find_nginx

from gpuyard.domain.routing import Route, RouteKey, route_problem, user_segment
from gpuyard.services.routing.config import RouteLogin, render_config
from gpuyard.services.routing.nginx import (
    NginxConfigRefused,
    NginxTarget,
    check_config,
    install_config,
)


def _nginx_binary() -> str:
    try:
        return str(find_nginx())
    except ServerUnavailable as missing:
        raise pytest.skip.Exception(str(missing)) from missing


#: Names as users type them: anything printable or not, quotes, braces, semicolons, $...
hostile_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from(["a;b", "x}", "${host}", "..", "a b", "'", '"', "#c", "a\nb", "ok-name"])


#: Servers' hosts: addresses (what resolution hands the renderer), or anything at all.
upstream_hosts = st.sampled_from(["127.0.0.1", "10.0.0.7", "::1", "gpu-01.example"]) | hostile_text


@pytest.mark.integration
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(
        st.tuples(hostile_text, hostile_text, upstream_hosts, st.integers(-1, 70000)),
        min_size=1,
        max_size=6,
    ),
    with_login=st.booleans(),
)
def test_any_names_render_to_a_config_nginx_accepts(
    names: list[tuple[str, str, str, int]],
    with_login: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    binary = _nginx_binary()
    routes = []
    for username, workload_id, host, port in names:
        # The username goes through the same choice the service makes (falling back to
        # an id); the workload id and the host go in raw, as if a check upstream failed.
        key = RouteKey(user_segment(username, "user-1"), workload_id, max(port, 1))
        routes.append(Route(key, host, port))
    login = RouteLogin("https://apps.example.com", "https://gpuyard.example.com:8443")
    config = render_config(
        routes,
        listen="127.0.0.1:18081",
        authorize_base="http://127.0.0.1:8080",
        login=login if with_login else None,
    )
    # With the login flow every route sends a 401 to the dashboard's login for itself.
    redirects = config.text.count("error_page 401 https://gpuyard.example.com:8443/api/v1/")
    assert redirects == (len(config.routes) if with_login else 0)
    assert ("location = /_gpuyard/session" in config.text) is with_login
    kept = {r for r in routes if route_problem(r) is None}
    assert {r.key.path for r in config.routes} == {r.key.path for r in kept}
    assert all(route_problem(r) is not None or r in kept for r, _ in config.refused)
    for route in config.routes:
        assert f"    location {route.key.path} {{\n" in config.text
    plain = [
        r
        for r in routes
        if r.key.workload_id == "ok-name"
        and r.upstream_host in {"127.0.0.1", "10.0.0.7", "::1"}
        and 1 <= r.upstream_port <= 65535
    ]
    if plain:
        assert config.routes  # a plain name on an address, on a valid port, is published
    candidate = tmp_path_factory.mktemp("routes") / "routes.conf"
    candidate.write_text(config.text, encoding="utf-8")
    check_config(binary, candidate)  # raises NginxConfigRefused with nginx's words


def _wait_for_body(url: str, expected: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(url, timeout=5)
        if response.text == expected or time.monotonic() > deadline:
            assert response.text == expected, response.text
            return
        time.sleep(0.05)


def _server(port: int, body: str) -> str:
    return (
        f"server {{\n    listen 127.0.0.1:{port};\n"
        f'    location = /which {{ return 200 "{body}"; }}\n}}\n'
    )


def test_a_broken_config_keeps_the_old_one_and_a_good_one_is_reloaded(
    nginx_server: NginxServer,
) -> None:
    assert nginx_server.binary is not None
    target = NginxTarget(nginx_server.routes_conf, nginx_server.pid_file, str(nginx_server.binary))
    url = f"{nginx_server.url}/which"

    old_workers = nginx_server.worker_pids()
    assert install_config(target, _server(nginx_server.port, "old")) is True
    nginx_server.wait_for_reload(old_workers)
    _wait_for_body(url, "old")
    assert install_config(target, _server(nginx_server.port, "old")) is False  # unchanged
    reloads = nginx_server.reloads_seen()
    serving = nginx_server.worker_pids()
    live_before = nginx_server.routes_conf.read_text()

    broken = _server(nginx_server.port, "new") + "server { listen 127.0.0.1:1; bogus_directive; }"
    with pytest.raises(NginxConfigRefused, match="bogus_directive"):
        install_config(target, broken)
    assert nginx_server.routes_conf.read_text() == live_before
    assert not list(Path(nginx_server.routes_conf.parent).glob(".routes.conf.candidate"))
    time.sleep(0.3)
    assert nginx_server.reloads_seen() == reloads  # nginx was not even asked
    assert nginx_server.worker_pids() == serving  # the same workers, the old config
    assert httpx.get(url).text == "old"

    old_workers = nginx_server.worker_pids()
    assert install_config(target, _server(nginx_server.port, "new")) is True
    nginx_server.wait_for_reload(old_workers)
    _wait_for_body(url, "new")
