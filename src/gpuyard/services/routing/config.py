"""The nginx config of per-user routing, as text (no I/O).

gpuyard writes one file meant for nginx's ``http`` context (Debian's nginx.conf includes
``/etc/nginx/conf.d/*.conf``): two maps and one ``server`` listening on
``GPUYARD_ROUTING_LISTEN``, with one ``location`` per published port. Each location

- asks gpuyard first (``auth_request`` to ``GET /api/v1/routing/authorize``), sending the
  route's own path in ``X-Original-URI``: the literal path of the location that matched,
  never the client's raw ``$request_uri``, since nginx matches locations on the
  normalised URI (``/u/bob/w/80/../../../alice/...`` matches alice's location);
- strips gpuyard's cookies and the ``Authorization`` header before proxying, so a
  workload never sees the credentials of the people who visit it;
- passes WebSockets (``Upgrade`` / ``Connection``) and strips its prefix
  (``X-Forwarded-Prefix`` says what it was);
- rewrites the path (and domain) of every cookie the workload sets to the route's own,
  so a workload cannot plant cookies on the dashboard (session fixation) or other routes.

Only routes that :func:`gpuyard.domain.routing.route_problem` accepts are rendered; the
others are returned so the caller can log them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gpuyard.domain.routing import ROUTE_PREFIX, Route, route_problem, upstream_authority
from gpuyard.services.routing.access import ROUTE_HEADER

AUTHORIZE_LOCATION = "/_gpuyard/authorize"
AUTHORIZE_PATH = "/api/v1/routing/authorize"

_HEAD = """\
# Written by gpuyard (per-user routing, docs/operations.md): do not edit, it is
# rewritten whenever the routes change.
map $http_upgrade $gpuyard_connection {
    default upgrade;
    '' close;
}
# gpuyard's cookies (session, CSRF) never reach a workload: at most two are sent to /u/.
map $http_cookie $gpuyard_cookie_1 {
    default $http_cookie;
    "~^(?<gy_c1a>.*?)(?:^|;\\s*)gpuyard_[a-z]+=[^;]*(?<gy_c1b>.*)$" "$gy_c1a$gy_c1b";
}
map $gpuyard_cookie_1 $gpuyard_cookie {
    default $gpuyard_cookie_1;
    "~^(?<gy_c2a>.*?)(?:^|;\\s*)gpuyard_[a-z]+=[^;]*(?<gy_c2b>.*)$" "$gy_c2a$gy_c2b";
}
"""


@dataclass(frozen=True)
class RoutingConfig:
    """A rendered config: its text, the routes in it and those left out (with why)."""

    text: str
    routes: tuple[Route, ...]
    refused: tuple[tuple[Route, str], ...]


def render_config(routes: Iterable[Route], *, listen: str, authorize_base: str) -> RoutingConfig:
    """The config for ``routes``: ``listen`` is nginx's listen address (``host:port``),
    ``authorize_base`` gpuyard's API base URL as nginx reaches it (``http://host:port``).
    Both come from settings, validated there; routes come from users and are checked
    here, one by one."""
    kept: list[Route] = []
    refused: list[tuple[Route, str]] = []
    seen: set[str] = set()
    for route in sorted(set(routes)):
        problem = route_problem(route)
        if problem is None and route.key.path in seen:
            problem = "another route has the same path"
        if problem is not None:
            refused.append((route, problem))
            continue
        seen.add(route.key.path)
        kept.append(route)
    lines = [
        _HEAD,
        "server {",
        f"    listen {listen};",
        "    server_name _;",
        f"    location = {AUTHORIZE_LOCATION} {{",
        "        internal;",
        f"        proxy_pass {authorize_base.rstrip('/')}{AUTHORIZE_PATH};",
        "        proxy_pass_request_body off;",
        '        proxy_set_header Content-Length "";',
        f"        proxy_set_header {ROUTE_HEADER} $gpuyard_route;",
        "    }",
    ]
    for route in kept:
        lines.extend(_location(route))
    # The catch-all also declares $gpuyard_route, so a config without routes still parses.
    # Not at server level: an auth subrequest runs the server's rewrites again and
    # shares its parent's variables, so a server-level ``set`` would blank the route.
    lines.extend(
        [
            f"    location {ROUTE_PREFIX} {{",
            '        set $gpuyard_route "";',
            "        return 404;",
            "    }",
            "}",
            "",
        ]
    )
    return RoutingConfig("\n".join(lines), tuple(kept), tuple(refused))


def _location(route: Route) -> list[str]:
    path = route.key.path
    upstream = upstream_authority(route.upstream_host, route.upstream_port)
    return [
        f"    location {path} {{",
        f"        set $gpuyard_route {path};",
        f"        auth_request {AUTHORIZE_LOCATION};",
        f"        proxy_pass http://{upstream}/;",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Upgrade $http_upgrade;",
        "        proxy_set_header Connection $gpuyard_connection;",
        "        proxy_set_header Host $host;",
        "        proxy_set_header Cookie $gpuyard_cookie;",
        '        proxy_set_header Authorization "";',
        f"        proxy_set_header X-Forwarded-Prefix {path};",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        # Every cookie the workload sets stays under its own route: it cannot overwrite
        # the dashboard's cookies (same host name: cookies ignore ports) or another
        # route's, nor reach for a parent domain.
        f"        proxy_cookie_path ~^/.*$ {path};",
        "        proxy_cookie_domain ~.* $host;",
        "        proxy_read_timeout 1h;",
        "    }",
    ]
