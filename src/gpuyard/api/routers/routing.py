"""Per-user routing: GET /api/v1/routing/authorize, asked by nginx's auth_request for
every request to a route (services/routing/access.py), and the login to a routing host
of its own: /routing/login on the dashboard, /routing/session through the routing host
(services/routing/login.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Header, Query, Response, status
from fastapi.responses import RedirectResponse

from gpuyard.api.authorization import SESSION_COOKIE, ClientOrigin, public, requires_route_visitor
from gpuyard.api.deps import ContextDep
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.routing.access import ROUTE_HEADER, authorize_route
from gpuyard.services.routing.login import (
    MAX_NEXT,
    ROUTE_COOKIE,
    login_redirect,
    redeem_ticket,
)

router = APIRouter(prefix="/routing", tags=["routing"])
Visitor = Annotated[Caller, requires_route_visitor(Permission.ROUTING_ACCESS)]
#: Where the route cookie is sent: the routes, nothing else on the routing host.
ROUTE_COOKIE_PATH = "/u"
_REDIRECT: dict[int | str, dict[str, Any]] = {
    303: {"description": "where the browser goes next (Location)"}
}


@router.get(
    "/authorize",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={204: {"description": "the caller may open the route"}},
)
def authorize(
    ctx: ContextDep,
    caller: Visitor,
    original_uri: Annotated[str | None, Header(alias=ROUTE_HEADER)] = None,
) -> Response:
    """204 when the caller (session cookie, routing cookie or bearer token) may open the
    route whose path nginx sends in X-Original-URI; 401 without credentials, 403
    otherwise (also for a route that does not exist: nginx passes only 2xx, 401 and 403
    on)."""
    authorize_route(ctx, caller, original_uri)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/login",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses=_REDIRECT,
)
def login(
    ctx: ContextDep,
    origin: Annotated[ClientOrigin, public(Permission.ROUTING_LOGIN)],
    next_url: Annotated[str | None, Query(alias="next", max_length=MAX_NEXT)] = None,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> RedirectResponse:
    """Start opening the route ``next`` (a URL under GPUYARD_ROUTING_PUBLIC_URL) from a
    routing host of its own: to the dashboard's login without a session, else to the
    routing host with a one-minute, single-use ticket. 422 naming ``next`` for any other
    URL; 404 when the flow is not configured."""
    del origin
    return RedirectResponse(login_redirect(ctx, session, next_url), status.HTTP_303_SEE_OTHER)


@router.get(
    "/session",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses=_REDIRECT,
)
def session(
    ctx: ContextDep,
    origin: Annotated[ClientOrigin, public(Permission.ROUTING_SESSION)],
    ticket: Annotated[str | None, Query()] = None,
) -> RedirectResponse:
    """Redeem a ticket from /routing/login (reached through the routing host's
    /_gpuyard/session): sets the routing host's ``gpuyard_route`` cookie (host-only,
    Path=/u, httpOnly, SameSite=Lax; good for routes only, never for the API) and sends
    the browser to the route. 401 naming ``ticket`` for a used, expired or forged one."""
    del origin
    redeemed = redeem_ticket(ctx, ticket)
    response = RedirectResponse(redeemed.next_url, status.HTTP_303_SEE_OTHER)
    max_age = max(1, int((redeemed.expires_at - ctx.now()).total_seconds()))
    response.set_cookie(
        ROUTE_COOKIE,
        redeemed.token,
        max_age=max_age,
        path=ROUTE_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=redeemed.secure,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
