"""Dependencies as Annotated aliases: the service context and pagination. The caller
comes from the route's permission declaration (api/authorization.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION

from gpuyard.domain.errors import FieldError, InvalidInput
from gpuyard.domain.limits import MAX_LIST_LIMIT, MAX_LIST_OFFSET
from gpuyard.domain.text import unstorable_reason
from gpuyard.services.context import ServiceContext


async def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="page size")]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET, description="items to skip")]


async def refuse_unstorable_params(connection: HTTPConnection) -> None:
    """Path and query parameters hold no NUL (``%00``) or other unstorable text: such a
    value would fail the database read it filters, so it is a 422 naming the parameter.
    (Bodies are checked by their schemas, api/schemas/common.py.)"""
    errors: list[FieldError] = []
    params = [*connection.path_params.items(), *connection.query_params.multi_items()]
    for name, value in params:
        reason = unstorable_reason(name) or unstorable_reason(str(value))
        if reason is not None:
            errors.append(FieldError(name if unstorable_reason(name) is None else "query", reason))
    if errors:
        problem = InvalidInput.for_fields(errors)
        if connection.scope["type"] == "websocket":  # no HTTP answer to give: close it
            raise WebSocketException(WS_1008_POLICY_VIOLATION, reason=problem.detail[:120])
        raise problem
