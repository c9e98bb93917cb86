"""Per-user routing (issue 19): the path of a workload port's stable URL,
``/u/<user>/<workload id>/<port>/``, and the rules that keep user-chosen names out of
nginx's grammar.

Everything that reaches the rendered nginx config passes through this module: a path
segment is ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}`` (no quotes, spaces, braces, semicolons,
``$``, slashes or ``..``), an upstream host a DNS name or an IP address. Anything else is
refused here and never written (services/routing/config.py renders only what passes).
Upstream hosts are rendered as IP addresses only: nginx resolves a name when it loads the
config, and a name it cannot resolve fails the whole config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from typing import Final

ROUTE_PREFIX: Final = "/u/"
#: A segment of a route's path: what a username or an id must look like to appear there.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: The longest original URI an authorization looks at (nginx's default large header
#: buffer is 8 KiB; a longer one is refused, not parsed).
MAX_ROUTE_URI: Final = 8192


def is_route_segment(text: str) -> bool:
    """Whether ``text`` may stand as one segment of a route's path (and of nginx config)."""
    return _SEGMENT.fullmatch(text) is not None


def user_segment(username: str | None, user_id: str) -> str:
    """The user part of a route: the username when it is a valid segment, else the user's
    id (which always is: ids are generated). Usernames are unique, so either names one
    user."""
    if username and is_route_segment(username):
        return username
    return user_id


def is_upstream_host(text: str) -> bool:
    """Whether ``text`` is an IP address or a DNS name nginx may proxy to (no port, no
    scheme, no characters nginx's grammar gives a meaning)."""
    try:
        ip_address(text)
        return True
    except ValueError:
        pass
    if not text or len(text) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in text.rstrip(".").split("."))


def upstream_authority(host: str, port: int) -> str:
    """``host:port`` for a proxy_pass URL (an IPv6 address in brackets)."""
    try:
        if isinstance(ip_address(host), IPv6Address):
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


@dataclass(frozen=True, order=True)
class RouteKey:
    """What a route's path names: a user segment, a workload id and a container port."""

    user: str
    workload_id: str
    port: int

    @property
    def path(self) -> str:
        """The route's path, ending in a slash (nginx strips it before proxying)."""
        return f"{ROUTE_PREFIX}{self.user}/{self.workload_id}/{self.port}/"


@dataclass(frozen=True, order=True)
class Route:
    """One port to publish: its key and where nginx sends its requests."""

    key: RouteKey
    upstream_host: str
    upstream_port: int


def route_problem(route: Route) -> str | None:
    """Why ``route`` cannot be rendered safely; None when it can."""
    key = route.key
    if not is_route_segment(key.user):
        return "the user's name is not a valid path segment"
    if not is_route_segment(key.workload_id):
        return "the workload's id is not a valid path segment"
    if not 1 <= key.port <= 65535:
        return "the container port is out of range"
    if not 1 <= route.upstream_port <= 65535:
        return "the host port is out of range"
    if not is_upstream_host(route.upstream_host):
        return "the server's host is not a DNS name or an IP address"
    if not is_ip_address(route.upstream_host):
        # nginx resolves names when it loads a config, and one it cannot resolve fails
        # the whole config: names are resolved before rendering (services/routing).
        return "the server's host is not resolved to an IP address"
    return None


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address."""
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def parse_route_uri(uri: str) -> RouteKey | None:
    """The route an original request URI (path and query, as nginx's ``$request_uri``)
    falls under; None when it names none (wrong prefix, bad segment, bad port). The
    query string and anything after the port's slash are ignored."""
    if len(uri) > MAX_ROUTE_URI or not uri.startswith(ROUTE_PREFIX):
        return None
    path = uri.split("?", 1)[0].split("#", 1)[0]
    parts = path[len(ROUTE_PREFIX) :].split("/")
    if len(parts) < 3:
        return None
    user, workload_id, port_text = parts[0], parts[1], parts[2]
    if not (is_route_segment(user) and is_route_segment(workload_id)):
        return None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    return RouteKey(user, workload_id, port)
