"""The one policy dependency: every route declares a Permission, checked here.

A route asks for its caller with ``Annotated[Caller, requires(Permission.X)]``; an open
route (login, register, health) declares ``public(Permission.Y)`` instead. Both are an
:class:`Authorize`, which

1. finds the credentials: ``Authorization: Bearer <JWT or gpy_ API token>``, else the
   ``gpuyard_session`` cookie, in which case an unsafe method (POST, PATCH, DELETE...)
   must echo the ``gpuyard_csrf`` cookie in an ``X-CSRF-Token`` header (double submit);
2. resolves the caller (401 without valid credentials);
3. asks the policy (auth/permissions.py) whether the caller's role may exercise the
   permission at all (403 when not). Ownership of one object is checked by the service,
   with the same policy (services/identity/access.py).

:func:`check_route_permissions` runs when the app is built: a route that does not
declare exactly one permission stops the server from starting.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlsplit

import fastapi.routing
from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketException
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gpuyard.api.client_address import client_ip
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, allows, is_public, roles_allowed
from gpuyard.auth.scraper_token import scraper_token_matches
from gpuyard.domain.errors import Forbidden, Unauthenticated
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.auth import recent_caller, resolve_caller
from gpuyard.services.routing.login import ROUTE_COOKIE, route_caller

SESSION_COOKIE = "gpuyard_session"
CSRF_COOKIE = "gpuyard_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PERMISSION_EXTENSION = "x-gpuyard-permission"
ROLES_EXTENSION = "x-gpuyard-roles"

_bearer = HTTPBearer(
    auto_error=False, description="JWT from POST /api/v1/auth/login, or a gpy_ API token"
)
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="dashboard session (login with set_cookie); unsafe methods need X-CSRF-Token",
)


@dataclass(frozen=True)
class ClientOrigin:
    """Where an anonymous request came from (for throttling and the audit log)."""

    ip: str | None


class Authorize:
    """Declares and enforces a route's permission (one cached instance per permission,
    so FastAPI's per-request dependency cache resolves the caller once)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Depends(_session_cookie)],
    ) -> Caller:
        # Async so a recently seen token (the usual case) costs no hop to a worker thread;
        # a token that must be looked up in the database is resolved in one.
        ctx: ServiceContext = request.app.state.ctx
        presented = chosen_credentials(bearer, cookie)
        if presented is None:
            raise Unauthenticated(
                "send 'Authorization: Bearer <token>' (POST /api/v1/auth/login or an API token)"
            )
        token, from_cookie = presented
        ip = client_ip(request)
        caller = recent_caller(ctx, token, ip)
        if caller is None:
            caller = await run_in_threadpool(resolve_caller, ctx, token, ip)  # 401 before 403
        if from_cookie:
            _check_csrf(request)
        if not allows(caller.role, caller.user_id, self.permission):
            raise Forbidden(f"the {caller.role.value} role may not do this ({self.permission})")
        return caller


def chosen_credentials(
    bearer: HTTPAuthorizationCredentials | None, cookie: str | None
) -> tuple[str, bool] | None:
    """The token a request authenticates with, and whether it is the session cookie: the
    bearer token, else the cookie; None without either."""
    if bearer is not None and bearer.scheme.lower() == "bearer":
        return bearer.credentials, False
    if cookie:
        return cookie, True
    return None


async def request_token(request: Request) -> str:
    """The token :class:`Authorize` accepted for ``request`` ("" without one), for a
    long-lived response that checks its caller again later (the live stream)."""
    presented = chosen_credentials(await _bearer(request), await _session_cookie(request))
    return presented[0] if presented is not None else ""


class AuthorizeScrape(Authorize):
    """The declaration of GET /metrics: a caller whose role has the permission, or a
    Prometheus scraper presenting ``GPUYARD_METRICS_TOKEN`` as its bearer token (then
    there is no caller: None). Without that setting only the first way exists."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Depends(_session_cookie)],
    ) -> Caller | None:
        ctx: ServiceContext = request.app.state.ctx
        if (
            bearer is not None
            and bearer.scheme.lower() == "bearer"
            and scraper_token_matches(ctx.settings.metrics_token, bearer.credentials)
        ):
            return None
        return await super().__call__(request, bearer, cookie)


class AuthorizeRouteVisitor(Authorize):
    """The declaration of GET /routing/authorize: :class:`Authorize`, or else the routing
    host's ``gpuyard_route`` cookie (services/routing/login.py). That cookie is read here
    and nowhere else, so it opens routes and never the API."""

    async def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Depends(_session_cookie)],
    ) -> Caller:
        route_token = request.cookies.get(ROUTE_COOKIE, "")
        if chosen_credentials(bearer, cookie) is not None or not route_token:
            return await super().__call__(request, bearer, cookie)
        ctx: ServiceContext = request.app.state.ctx
        caller = await run_in_threadpool(route_caller, ctx, route_token, client_ip(request))
        if not allows(caller.role, caller.user_id, self.permission):
            raise Forbidden(f"the {caller.role.value} role may not do this ({self.permission})")
        return caller


class AuthorizePublic(Authorize):
    """An open route's declaration: no credentials needed (and none are looked at)."""

    def __call__(self, request: Request) -> ClientOrigin:  # type: ignore[override]
        return ClientOrigin(ip=client_ip(request))


class AuthorizeSocket(Authorize):
    """The declaration of a WebSocket route. Browsers cannot set headers on a WebSocket,
    so besides ``Authorization: Bearer`` the token may come as a ``token`` query parameter
    or the session cookie; with the cookie, the Origin must be this server (a page on
    another site cannot open a session-authenticated socket)."""

    def __call__(self, websocket: WebSocket) -> Caller:  # type: ignore[override]
        ctx: ServiceContext = websocket.app.state.ctx
        header = websocket.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else ""
        token = token or websocket.query_params.get("token", "")
        cookie = websocket.cookies.get(SESSION_COOKIE, "")
        try:
            if not token and cookie:
                _check_origin(websocket)
                token = cookie
            if not token:
                raise Unauthenticated("send a bearer token, a token parameter or the session")
            ip = client_ip(websocket)
            caller = resolve_caller(ctx, token, ip)
            if not allows(caller.role, caller.user_id, self.permission):
                raise Forbidden(f"the {caller.role.value} role may not do this")
        except (Unauthenticated, Forbidden) as exc:
            # 1008 = policy violation: the handshake is refused before it is accepted.
            raise WebSocketException(code=1008, reason=exc.detail[:120]) from exc
        return caller


def _check_origin(websocket: WebSocket) -> None:
    origin = websocket.headers.get("origin")
    if origin and urlsplit(origin).netloc != websocket.headers.get("host"):
        raise Forbidden("a session-authenticated WebSocket must come from this server's pages")


def _check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise Forbidden(
            f"missing or wrong CSRF token: send the {CSRF_COOKIE} cookie's value in the "
            f"{CSRF_HEADER} header"
        )


@cache
def _authorize(permission: Permission) -> Authorize:
    return AuthorizePublic(permission) if is_public(permission) else Authorize(permission)


def requires(permission: Permission) -> Any:
    """``caller: Annotated[Caller, requires(Permission.X)]``."""
    if is_public(permission):
        raise ValueError(f"{permission} is public: declare it with public()")
    return Depends(_authorize(permission))


def requires_route_visitor(permission: Permission) -> Any:
    """``caller: Annotated[Caller, requires_route_visitor(Permission.ROUTING_ACCESS)]``:
    :func:`requires`, or the routing host's cookie (:class:`AuthorizeRouteVisitor`)."""
    return Depends(_authorize_route_visitor(permission))


@cache
def _authorize_route_visitor(permission: Permission) -> AuthorizeRouteVisitor:
    return AuthorizeRouteVisitor(permission)


def requires_or_scraper(permission: Permission) -> Any:
    """``caller: Annotated[Caller | None, requires_or_scraper(Permission.METRICS_READ)]``:
    :func:`requires`, or the scrapers' token (:class:`AuthorizeScrape`)."""
    return Depends(_authorize_scrape(permission))


@cache
def _authorize_scrape(permission: Permission) -> AuthorizeScrape:
    return AuthorizeScrape(permission)


def requires_socket(permission: Permission) -> Any:
    """``caller: Annotated[Caller, requires_socket(Permission.X)]`` for WebSocket routes."""
    return Depends(_authorize_socket(permission))


@cache
def _authorize_socket(permission: Permission) -> AuthorizeSocket:
    return AuthorizeSocket(permission)


def public(permission: Permission) -> Any:
    """``origin: Annotated[ClientOrigin, public(Permission.X)]`` for open routes."""
    if not is_public(permission):
        raise ValueError(f"{permission} is not public: declare it with requires()")
    return Depends(_authorize(permission))


def _declared(dependant: Dependant) -> set[Permission]:
    found: set[Permission] = set()
    for sub in dependant.dependencies:
        if isinstance(sub.call, Authorize):
            found.add(sub.call.permission)
        found |= _declared(sub)
    return found


def _api_endpoints(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """(path, methods, dependant) of every HTTP and WebSocket route, routers included.
    Newer FastAPI keeps included routers as routes of their own and combines their
    dependencies lazily (``iter_route_contexts``); older versions flatten them."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterator[Any] = (
        iter(iter_route_contexts(app.routes)) if iter_route_contexts else iter(app.routes)
    )
    for route in routes:
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute):
            yield route.path_format, set(route.methods), route.dependant
        elif isinstance(original, APIWebSocketRoute):
            yield route.path_format, {"WEBSOCKET"}, route.dependant


def check_route_permissions(app: FastAPI) -> dict[tuple[str, str], Permission]:
    """Refuse to build an app with a route that does not declare exactly one permission;
    record each route's permission and roles in the OpenAPI document. Returns the
    declarations, keyed by (method, path)."""
    declarations: dict[tuple[str, str], Permission] = {}
    for path, methods, dependant in _api_endpoints(app):
        declared = _declared(dependant)
        if len(declared) != 1:
            raise RuntimeError(
                f"route {sorted(methods)} {path} must declare exactly one permission with "
                f"requires() or public(); it declares {sorted(declared) or 'none'}"
            )
        for method in methods:
            declarations[(method, path)] = next(iter(declared))
    _document_permissions(app, declarations)
    return declarations


def _document_permissions(app: FastAPI, declarations: dict[tuple[str, str], Permission]) -> None:
    generate = app.openapi

    def openapi_with_permissions() -> dict[str, Any]:
        schema = generate()
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                permission = declarations.get((method.upper(), path))
                if permission is None:
                    continue
                operation[PERMISSION_EXTENSION] = permission.value
                operation[ROLES_EXTENSION] = (
                    ["anyone"]
                    if is_public(permission)
                    else sorted(r.value for r in roles_allowed(permission))
                )
        return schema

    app.openapi = openapi_with_permissions  # type: ignore[method-assign]
