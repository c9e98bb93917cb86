"""Dependencies as Annotated aliases: the service context, the caller, pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Unauthenticated
from gpuyard.services.auth import resolve_caller
from gpuyard.services.context import ServiceContext

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/login")


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def get_caller(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send 'Authorization: Bearer <token>' (POST /api/v1/auth/login)")
    return resolve_caller(ctx, credentials.credentials)


CallerDep = Annotated[Caller, Depends(get_caller)]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="page size")]
OffsetQuery = Annotated[int, Query(ge=0, description="items to skip")]
