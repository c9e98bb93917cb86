"""Times every HTTP request by its route template (``/api/v1/workloads/{workload_id}``,
never the raw path, so the label set is bounded by the routes), method and status class.

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which would buffer streamed
responses): the duration runs from the request's arrival to its response's headers, so
a live stream counts its time to open, not the hours it stays open."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpuyard.services.metrics.instruments import UNMATCHED_ROUTE, ProcessMetrics


def route_templates(app: FastAPI) -> dict[int, str]:
    """The full path template of every route, keyed by the route object's id: newer
    FastAPI hands the router's own route to the request (its path without the prefixes
    of the routers that include it), so the full template is looked up here."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    templates: dict[int, str] = {}
    if iter_route_contexts is not None:
        for context in iter_route_contexts(app.routes):
            original = getattr(context, "original_route", context)
            templates.setdefault(id(original), context.path_format)
    for route in app.routes:
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if isinstance(path, str):
            templates.setdefault(id(route), path)
    return templates


class RequestMetrics:
    """Observes ``gpuyard_http_request_duration_seconds`` for each HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ProcessMetrics, templates: Mapping[int, str]):
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            route = self._template(scope.get("route"))
            elapsed = time.perf_counter() - started
            self.metrics.record_request(scope["method"], route, status, elapsed)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not recorded:  # failed before any response: the server answers 500
                record(500)

    def _template(self, route: Any) -> str:
        if not isinstance(route, BaseRoute):
            return UNMATCHED_ROUTE
        return self.templates.get(id(route), UNMATCHED_ROUTE)
