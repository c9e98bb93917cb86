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
  so a workload cannot plant cookies on the dashboard (session fixation) or other routes;
- with a login flow (:class:`RouteLogin`: routes on a host name of their own), answers a
  401 from the check with a redirect to the dashboard's ``/api/v1/routing/login`` for the
  route, and passes ``/_gpuyard/session`` (the ticket's way back) to the API.

Only routes that :func:`gpuyard.domain.routing.route_problem` accepts are rendered; the
others are returned so the caller can log them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from gpuyard.domain.routing import ROUTE_PREFIX, Route, route_problem, upstream_authority
from gpuyard.services.routing.access import ROUTE_HEADER
from gpuyard.services.routing.login import LOGIN_PATH, SESSION_LOCATION, SESSION_PATH

AUTHORIZE_LOCATION = "/_gpuyard/authorize"
AUTHORIZE_PATH = "/api/v1/routing/authorize"

_HEAD = """\
# Written by gpuyard (per-user routing, docs/operations.md): do not edit, it is
# rewritten whenever the routes change.
map $http_upgrade $gpuyard_connection {
    default upgrade;
    '' close;
}
# gpuyard's cookies (session, CSRF, route) never reach a workload: at most three are
# sent to /u/.
map $http_cookie $gpuyard_cookie_1 {
    default $http_cookie;
    "~^(?<gy_c1a>.*?)(?:^|;\\s*)gpuyard_[a-z]+=[^;]*(?<gy_c1b>.*)$" "$gy_c1a$gy_c1b";
}
map $gpuyard_cookie_1 $gpuyard_cookie_2 {
    default $gpuyard_cookie_1;
    "~^(?<gy_c2a>.*?)(?:^|;\\s*)gpuyard_[a-z]+=[^;]*(?<gy_c2b>.*)$" "$gy_c2a$gy_c2b";
}
map $gpuyard_cookie_2 $gpuyard_cookie {
    default $gpuyard_cookie_2;
    "~^(?<gy_c3a>.*?)(?:^|;\\s*)gpuyard_[a-z]+=[^;]*(?<gy_c3b>.*)$" "$gy_c3a$gy_c3b";
}
"""


@dataclass(frozen=True)
class RouteLogin:
    """The login flow's two URLs (settings, validated there as plain URLs): where routes
    are opened (``GPUYARD_ROUTING_PUBLIC_URL``) and the dashboard
    (``GPUYARD_ROUTING_DASHBOARD_URL``)."""

    public_url: str
    dashboard_url: str


@dataclass(frozen=True)
class RoutingConfig:
    """A rendered config: its text, the routes in it and those left out (with why)."""

    text: str
    routes: tuple[Route, ...]
    refused: tuple[tuple[Route, str], ...]


def render_config(
    routes: Iterable[Route], *, listen: str, authorize_base: str, login: RouteLogin | None = None
) -> RoutingConfig:
    """The config for ``routes``: ``listen`` is nginx's listen address (``host:port``),
    ``authorize_base`` gpuyard's API base URL as nginx reaches it (``http://host:port``),
    ``login`` the login flow's URLs (None: a visitor without credentials gets the 401).
    These come from settings, validated there; routes come from users and are checked
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
    if login is not None:
        lines.extend(_session_location(authorize_base))
    for route in kept:
        lines.extend(_location(route, login))
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


def _session_location(authorize_base: str) -> list[str]:
    # The ticket's way back: the API sets the routing host's cookie (host-only, so it must
    # be answered through this host) and redirects to the route.
    return [
        f"    location = {SESSION_LOCATION} {{",
        f"        proxy_pass {authorize_base.rstrip('/')}{SESSION_PATH}$is_args$args;",
        "        proxy_pass_request_body off;",
        '        proxy_set_header Content-Length "";',
        '        proxy_set_header Cookie "";',
        '        proxy_set_header Authorization "";',
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    }",
    ]


def _location(route: Route, login: RouteLogin | None) -> list[str]:
    path = route.key.path
    upstream = upstream_authority(route.upstream_host, route.upstream_port)
    redirect: list[str] = []
    if login is not None:
        # Back to the route's own URL after the login: a literal, quoted here (nginx has
        # no way to quote the request's URI into a query), so a deep link lands on the
        # route's start page.
        login_url = f"{login.dashboard_url}{LOGIN_PATH}?" + urlencode(
            {"next": f"{login.public_url}{path}"}
        )
        redirect = [f"        error_page 401 {login_url};"]
    return [
        f"    location {path} {{",
        f"        set $gpuyard_route {path};",
        f"        auth_request {AUTHORIZE_LOCATION};",
        *redirect,
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
