"""Dependencies as Annotated aliases: the service context and pagination. The caller
comes from the route's permission declaration (api/authorization.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from gpuyard.services.context import ServiceContext


async def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="page size")]
OffsetQuery = Annotated[int, Query(ge=0, description="items to skip")]
