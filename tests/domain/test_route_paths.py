"""Route paths: what a segment may be, and which route an original URI names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.routing import (
    MAX_ROUTE_URI,
    Route,
    RouteKey,
    is_route_segment,
    is_upstream_host,
    parse_route_uri,
    route_problem,
    upstream_authority,
    user_segment,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("/u/alice/w1/8888/", RouteKey("alice", "w1", 8888), id="route-root"),
        pytest.param("/u/alice/w1/8888", RouteKey("alice", "w1", 8888), id="no-trailing-slash"),
        pytest.param(
            "/u/alice/w1/80/a/b?x=/u/bob/", RouteKey("alice", "w1", 80), id="deeper-with-query"
        ),
        pytest.param("/u/alice/w1/", None, id="no-port"),
        pytest.param("/u/alice/w1/0/", None, id="port-zero"),
        pytest.param("/u/alice/w1/65536/", None, id="port-too-big"),
        pytest.param("/u/alice/w1/\uff18\uff10/", None, id="non-ascii-digits"),
        pytest.param("/u/../w1/80/", None, id="dot-dot-user"),
        pytest.param("/u/al ice/w1/80/", None, id="space-in-user"),
        pytest.param("/api/v1/workloads", None, id="not-a-route"),
        pytest.param("/u/a/" + "w" * 65 + "/80/", None, id="segment-too-long"),
        pytest.param("/u/a/w/80/" + "x" * MAX_ROUTE_URI, None, id="uri-too-long"),
    ],
)
def test_parse_route_uri(uri: str, expected: RouteKey | None) -> None:
    assert parse_route_uri(uri) == expected


@pytest.mark.parametrize(
    ("username", "user_id", "expected"),
    [
        pytest.param("alice", "id-1", "alice", id="valid-username"),
        pytest.param(None, "id-1", "id-1", id="no-username"),
        pytest.param("al;ice", "id-1", "id-1", id="username-nginx-would-parse"),
        pytest.param(".hidden", "id-1", "id-1", id="leading-dot"),
    ],
)
def test_user_segment(username: str | None, user_id: str, expected: str) -> None:
    assert user_segment(username, user_id) == expected


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        pytest.param("10.0.0.5", True, id="ipv4"),
        pytest.param("::1", True, id="ipv6"),
        pytest.param("gpu-01.example.com", True, id="dns-name"),
        pytest.param("gpu_01", False, id="underscore"),
        pytest.param("a;b", False, id="semicolon"),
        pytest.param("", False, id="empty"),
        pytest.param("a" * 64 + ".com", False, id="label-too-long"),
    ],
)
def test_is_upstream_host(host: str, ok: bool) -> None:
    assert is_upstream_host(host) is ok


def test_ipv6_upstream_is_bracketed() -> None:
    assert upstream_authority("::1", 80) == "[::1]:80"
    assert upstream_authority("10.0.0.1", 80) == "10.0.0.1:80"


@given(st.text(max_size=80))
def test_a_segment_never_carries_what_nginx_or_a_path_gives_meaning(text: str) -> None:
    if is_route_segment(text):
        assert not set(text) & set(" \t\n;{}\"'$/\\#?%")
        assert text.isascii()
        assert text[0].isalnum()  # so never "." or ".."


@given(st.text(max_size=30), st.text(max_size=30), st.integers(-5, 70000))
def test_a_parsed_route_renders_back_to_its_own_path(user: str, wid: str, port: int) -> None:
    key = parse_route_uri(f"/u/{user}/{wid}/{port}/")
    if key is not None:
        assert key.path == f"/u/{user}/{wid}/{port}/"
        assert route_problem(Route(key, "127.0.0.1", 80)) is None


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        pytest.param("10.0.0.5", None, id="address"),
        pytest.param("gpu-01.example.com", "not resolved", id="name-must-be-resolved-first"),
        pytest.param("a;b", "not a DNS name", id="malformed"),
    ],
)
def test_only_addresses_are_rendered_as_upstreams(host: str, problem: str | None) -> None:
    found = route_problem(Route(RouteKey("alice", "w1", 80), host, 32000))
    assert (found is None) if problem is None else (found is not None and problem in found)
