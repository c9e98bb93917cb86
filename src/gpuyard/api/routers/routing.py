"""Per-user routing's access check: GET /api/v1/routing/authorize, asked by nginx's
auth_request for every request to a route (services/routing/access.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.routing.access import ROUTE_HEADER, authorize_route

router = APIRouter(prefix="/routing", tags=["routing"])
Visitor = Annotated[Caller, requires(Permission.ROUTING_ACCESS)]


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
    """204 when the caller (session cookie or bearer token) may open the route whose path
    nginx sends in X-Original-URI; 401 without credentials, 403 otherwise (also for a
    route that does not exist: nginx passes only 2xx, 401 and 403 on)."""
    authorize_route(ctx, caller, original_uri)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
