"""GET /metrics: Prometheus's text format, for admins, operators and scrapers.

Not in the OpenAPI document: it is not part of the JSON API (Prometheus reads it, no
client is generated for it); its permission is checked like every route's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gpuyard.api.authorization import requires_or_scraper
from gpuyard.api.deps import ContextDep
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.metrics.exposition import CONTENT_TYPE, render_metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def get_metrics(
    ctx: ContextDep,
    _caller: Annotated[Caller | None, requires_or_scraper(Permission.METRICS_READ)],
) -> Response:
    """This process's counters and histograms, and the fleet and queue read now."""
    body = await run_in_threadpool(render_metrics, ctx)  # a database read: off the loop
    return Response(body, media_type=CONTENT_TYPE)
