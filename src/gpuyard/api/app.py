"""The FastAPI application: routers, error handlers, and the background loops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from gpuyard import __version__
from gpuyard.api.authorization import check_route_permissions
from gpuyard.api.body_limits import BodyLimits
from gpuyard.api.deps import refuse_unstorable_params
from gpuyard.api.docs_page import install_docs_page
from gpuyard.api.errors import install_error_handlers
from gpuyard.api.exit_signals import streams_end_on_exit_signals
from gpuyard.api.live_events import change_data
from gpuyard.api.openapi_problems import document_problems
from gpuyard.api.request_metrics import RequestMetrics, route_templates
from gpuyard.api.routers import (
    audit,
    auth,
    clusters,
    culling,
    fairshare,
    fleet,
    health,
    history,
    host_cleanup,
    host_ssh,
    images,
    invites,
    metrics,
    pools,
    queue,
    registries,
    routing,
    server_images,
    servers,
    stream,
    team_invitations,
    teams,
    tokens,
    users,
    workload_io,
    workloads,
)
from gpuyard.api.static_files import install_dashboard
from gpuyard.auth.permissions import is_public
from gpuyard.services.background import start_loops, stop_loops
from gpuyard.services.context import ServiceContext
from gpuyard.services.live.feed import build_live_feed

API_PREFIX = "/api/v1"


def _operation_id(route: APIRoute) -> str:
    # Stable ids ("workloads-create_workload") so generated clients keep method names.
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(ctx: ServiceContext) -> FastAPI:
    """The app over an opened context; loops run while it serves if settings say so."""

    live_feed = build_live_feed(ctx, change_data)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.bus.start()  # other processes' notices (services/bus); a no-op on SQLite
        runner = start_loops(ctx) if ctx.settings.run_loops else None
        try:
            with streams_end_on_exit_signals(live_feed):
                yield
        finally:
            live_feed.close()
            if runner:
                stop_loops(ctx, runner)
            ctx.bus.stop()

    app = FastAPI(
        title="gpuyard",
        version=__version__,
        description="Self-hosted GPU and container resource manager.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by install_docs_page, without a CDN
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        # Every path and query parameter is storable text (bodies: their schemas).
        dependencies=[Depends(refuse_unstorable_params)],
    )
    app.state.ctx = ctx
    app.state.live_feed = live_feed
    app.add_middleware(
        BodyLimits,
        max_body_bytes=ctx.settings.max_body_kib * 1024,
        idle_timeout_s=ctx.settings.body_idle_timeout_s,
        total_timeout_s=ctx.settings.body_timeout_s,
    )
    install_error_handlers(app)
    install_docs_page(app)
    api = APIRouter()
    # FastAPI tries routes in order, so the busiest (submitting and reading workloads)
    # come first; no two routers' paths overlap, so the order changes nothing else.
    for module in (
        workloads,
        workload_io,
        auth,
        invites,
        users,
        teams,
        team_invitations,
        tokens,
        clusters,
        servers,
        server_images,
        host_cleanup,
        host_ssh,
        images,
        registries,
        pools,
        culling,
        fleet,
        history,
        routing,
        queue,
        fairshare,
        audit,
        stream,
    ):
        api.include_router(module.router)
    # The prefix on the include, not on `api`: FastAPI checks every route of a router
    # included without a prefix, building each route's dependencies once more than it
    # must; that doubled the time to build an app (the tests build hundreds).
    app.include_router(api, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(metrics.router)
    install_dashboard(app)  # last: it serves the paths no other route does
    permissions = check_route_permissions(app)
    # Outermost: times every request, refusals of the body limits included.
    app.add_middleware(RequestMetrics, metrics=ctx.metrics, templates=route_templates(app))
    document_problems(
        app,
        public={key for key, permission in permissions.items() if is_public(permission)},
        relayed={
            (method, f"{API_PREFIX}{route.path}")
            for route in workload_io.router.routes
            if isinstance(route, APIRoute)
            for method in route.methods or ()
        },
    )
    return app


def create_metrics_app(ctx: ServiceContext) -> FastAPI:
    """GET /metrics (and the health probes) alone, for `gpuyard worker`, whose loops'
    counters live in its own process; same permission and scrapers' token as the API's."""
    app = FastAPI(
        title="gpuyard worker metrics",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    check_route_permissions(app)
    return app
