"""Upstream names are resolved before rendering: nginx would fail a whole config over
one name it cannot resolve."""

from __future__ import annotations

from gpuyard.domain.routing import Route, RouteKey
from gpuyard.services.routing.routes import resolve_upstreams


def _route(host: str, port: int = 32000) -> Route:
    return Route(RouteKey("alice", f"w{port}", 80), host, port)


def test_names_become_addresses_and_unresolvable_ones_are_left_out() -> None:
    routes = [
        _route("localhost", 1),
        _route("10.1.2.3", 2),
        _route("no-such-host.invalid", 3),  # .invalid never resolves (RFC 6761)
        _route("bad;name", 4),
    ]
    resolved = resolve_upstreams(routes)
    by_port = {r.upstream_port: r.upstream_host for r in resolved}
    assert by_port[1] in {"127.0.0.1", "::1"}
    assert by_port[2] == "10.1.2.3"
    assert 3 not in by_port
    assert by_port[4] == "bad;name"  # passed on for the renderer to refuse
