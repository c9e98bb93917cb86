"""GET /api/v1/stream: server-sent events for live dashboard updates.

Thin: the dependency validates the request and opens a subscription on the process's
live feed (services/live/), the generator writes what arrives as SSE. Events:

- ``workload`` (:class:`WorkloadChangePublic`), ``server`` (``ServerPublic``),
  ``queue`` (``{}``): each with ``id: <epoch>-<seq>``;
- ``resync`` (``{"reason"}``): what was missed cannot be replayed (an id from another
  server or too old, or the client fell behind): refetch, then carry on;
- a ``retry:`` hint first, and a keep-alive comment every ``stream_keepalive_s``.

The stream ends when the client goes, when the server shuts down (an exit signal ends
every stream at once: api/exit_signals.py), when the caller's credentials stop holding,
or after ``max_s`` seconds if asked. Events are encoded by api/live_events.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from gpuyard.api.authorization import request_token, requires
from gpuyard.api.client_address import client_ip
from gpuyard.api.deps import ContextDep
from gpuyard.api.live_events import LiveEventData, server_sent_event
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import InvalidInput
from gpuyard.services.context import ServiceContext
from gpuyard.services.live.feed import MAX_EVENT_ID_LENGTH, LiveFeed
from gpuyard.services.live.subscription import KINDS, Subscription
from gpuyard.services.live.viewers import open_viewer, refresh_viewer

router = APIRouter(prefix="/stream", tags=["stream"])

LAST_EVENT_ID = "Last-Event-ID"
#: The longest a stream may be asked to last with ``max_s`` (a day).
MAX_STREAM_S = 86_400.0


def live_feed(request: Request) -> LiveFeed:
    feed: LiveFeed = request.app.state.live_feed
    return feed


def _kinds(types: str | None) -> frozenset[str]:
    if types is None:
        return frozenset(KINDS)
    asked = [t.strip() for t in types.split(",") if t.strip()]
    unknown = sorted({t for t in asked if t not in KINDS})
    if unknown or not asked:
        raise InvalidInput.for_field(
            "types", f"a comma-separated list of {', '.join(KINDS)}; got {types[:64]!r}"
        )
    return frozenset(asked)


def _check_event_id(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_EVENT_ID_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidInput.for_field(
            LAST_EVENT_ID,
            f"at most {MAX_EVENT_ID_LENGTH} printable ASCII characters: an id this stream sent",
        )
    return value


async def open_subscription(
    request: Request,
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.WORKLOAD_READ)],
    types: Annotated[
        str | None,
        Query(
            max_length=64,
            description="comma-separated event kinds: workloads, servers, queue (default all)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias=LAST_EVENT_ID,
            description="the id of the last event received: the events after it are "
            "replayed, or a resync event says they cannot be",
        ),
    ] = None,
) -> AsyncIterator[Subscription]:
    """Validate the request, open a subscription; close it when the response ends."""
    kinds = _kinds(types)
    resume_from = _check_event_id(last_event_id)
    feed = live_feed(request)
    loop = asyncio.get_running_loop()

    def subscribe() -> Subscription:
        viewer = open_viewer(ctx, caller, kinds)
        return feed.subscribe(viewer, loop, ctx.settings.stream_client_queue, resume_from)

    subscription = await run_in_threadpool(subscribe)
    try:
        yield subscription
    finally:
        feed.unsubscribe(subscription)


@router.get(
    "",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "`event: workload`, `server`, `queue` or `resync`, each with an "
            "`id:` for Last-Event-ID and its `data:` as below; keep-alive comments between"
        }
    },
)
async def stream(
    request: Request,
    ctx: ContextDep,
    subscription: Annotated[Subscription, Depends(open_subscription)],
    max_s: Annotated[
        float | None,
        Query(gt=0, le=MAX_STREAM_S, description="end the stream after this many seconds"),
    ] = None,
) -> AsyncIterator[LiveEventData]:
    """Live changes to the workloads, servers and queue the caller may read."""
    # The annotation documents each event's data in the OpenAPI document; FastAPI writes
    # ServerSentEvent items as they are, without validating them against it.
    async for item in _events(request, ctx, subscription, max_s):
        yield item  # type: ignore[misc]


async def _events(
    request: Request, ctx: ContextDep, subscription: Subscription, max_s: float | None
) -> AsyncIterator[ServerSentEvent]:
    settings = ctx.settings
    feed = live_feed(request)
    loop = asyncio.get_running_loop()
    token, ip = await request_token(request), client_ip(request)
    deadline = loop.time() + max_s if max_s is not None else None
    recheck_at = loop.time() + settings.stream_recheck_s
    yield ServerSentEvent(comment="gpuyard live stream", retry=settings.stream_retry_ms)
    while True:
        now = loop.time()
        wait = settings.stream_keepalive_s
        if deadline is not None:
            if now >= deadline:
                return
            wait = min(wait, deadline - now)
        batch = await subscription.next(wait)
        if batch is None:  # the server is shutting down
            return
        if not batch and (deadline is None or loop.time() < deadline):
            yield ServerSentEvent(comment="keep-alive")
        for item in batch:
            yield server_sent_event(feed, item)
        if loop.time() >= recheck_at:
            recheck_at = loop.time() + settings.stream_recheck_s
            if not await run_in_threadpool(_still_allowed, ctx, subscription, token, ip):
                return


def _still_allowed(
    ctx: ServiceContext, subscription: Subscription, token: str, ip: str | None
) -> bool:
    return refresh_viewer(ctx, subscription.viewer, token, ip)
