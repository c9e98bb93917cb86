"""GET /api/v1/stream: server-sent events for live dashboard updates.

Thin: the dependency validates the request and opens a subscription on the process's
live feed (services/live/), the generator writes what arrives as SSE. Events:

- ``workload`` (:class:`WorkloadChangePublic`), ``server`` (``ServerPublic``),
  ``queue`` (``{}``): each with ``id: <epoch>-<seq>``;
- ``resync`` (``{"reason"}``): what was missed cannot be replayed (an id from another
  server or too old, or the client fell behind): refetch, then carry on;
- a ``retry:`` hint first, and a keep-alive comment every ``stream_keepalive_s``.

The stream ends when the client goes, when the server shuts down (an exit signal ends
every stream at once, so uvicorn's graceful shutdown does not wait on them), when the
caller's credentials stop holding, or after ``max_s`` seconds if asked.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from gpuyard.api.authorization import SESSION_COOKIE, requires
from gpuyard.api.client_address import client_ip
from gpuyard.api.converters import server_public
from gpuyard.api.deps import ContextDep
from gpuyard.api.schemas.stream import (
    QueueChangePublic,
    ResyncPublic,
    StreamPlacementPublic,
    WorkloadChangePublic,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.workload_records import Workload
from gpuyard.services.context import ServiceContext
from gpuyard.services.live.changes import ServerChanged, WorkloadChanged
from gpuyard.services.live.feed import MAX_EVENT_ID_LENGTH, LiveFeed
from gpuyard.services.live.subscription import KINDS, Resync, StreamEvent, Subscription
from gpuyard.services.live.viewers import open_viewer, refresh_viewer

router = APIRouter(prefix="/stream", tags=["stream"])

LAST_EVENT_ID = "Last-Event-ID"
#: The longest a stream may be asked to last with ``max_s`` (a day).
MAX_STREAM_S = 86_400.0
_EVENT_NAMES = {"workloads": "workload", "servers": "server", "queue": "queue"}


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


def _token(request: Request) -> str:
    # The same credentials Authorize accepted: the bearer token, else the session cookie.
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE, "")


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
            "description": "text/event-stream of `workload`, `server`, `queue` and "
            "`resync` events (see the schemas WorkloadChangePublic, ServerPublic, "
            "QueueChangePublic and ResyncPublic)"
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
) -> AsyncIterator[ServerSentEvent]:
    """Live changes to the workloads, servers and queue the caller may read."""
    settings = ctx.settings
    feed = live_feed(request)
    loop = asyncio.get_running_loop()
    token, ip = _token(request), client_ip(request)
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
            yield _sse(feed, item)
        if loop.time() >= recheck_at:
            recheck_at = loop.time() + settings.stream_recheck_s
            if not await run_in_threadpool(_still_allowed, ctx, subscription, token, ip):
                return


def _still_allowed(
    ctx: ServiceContext, subscription: Subscription, token: str, ip: str | None
) -> bool:
    return refresh_viewer(ctx, subscription.viewer, token, ip)


def _sse(feed: LiveFeed, item: StreamEvent | Resync) -> ServerSentEvent:
    if isinstance(item, Resync):
        data = ResyncPublic(reason=item.reason).model_dump_json()
        return ServerSentEvent(event="resync", id=feed.event_id(item.seq), raw_data=data)
    return ServerSentEvent(
        event=_EVENT_NAMES[item.kind], id=feed.event_id(item.seq), raw_data=_data(item)
    )


@lru_cache(maxsize=4096)
def _data(event: StreamEvent) -> str:
    # Once per event, whatever the number of streams it goes to (events hash by identity).
    change = event.change
    model: Any
    if isinstance(change, WorkloadChanged):
        model = workload_change_public(change.workload)
    elif isinstance(change, ServerChanged):
        model = server_public(change.server)
    else:
        model = QueueChangePublic()
    return str(model.model_dump_json())


def workload_change_public(workload: Workload) -> WorkloadChangePublic:
    request = workload.request
    placements = [
        StreamPlacementPublic(
            replica=p.replica, server_id=p.server_id, gpu_indices=[i for i, _ in p.gpus]
        )
        for p in workload.placements
    ]
    first = placements[0] if placements else None
    return WorkloadChangePublic(
        id=workload.id,
        name=workload.name,
        owner_id=workload.owner_id,
        team_id=workload.team_id,
        cluster_id=workload.cluster_id,
        status=workload.status,
        reason=workload.reason,
        reason_code=workload.reason_code,
        priority=workload.priority,
        preemptible=workload.preemptible,
        replicas=workload.replicas,
        cpu=request.cpu,
        ram_gb=request.ram_gb,
        storage_gb=request.storage_gb,
        gpu=request.gpu,
        gpu_model=workload.gpu_model,
        server_id=first.server_id if first else None,
        gpu_indices=first.gpu_indices if first else [],
        placements=placements,
        preemption_count=workload.preemption_count,
        updated_at=workload.updated_at,
        started_at=workload.started_at,
        finished_at=workload.finished_at,
    )


@contextmanager
def streams_end_on_exit_signals(feed: LiveFeed) -> Iterator[None]:
    """While the app runs in a server that handles SIGINT/SIGTERM in Python (uvicorn),
    end every open stream as soon as one arrives: uvicorn's graceful shutdown waits for
    open responses before it tells the app, so a stream would otherwise hold it up
    forever. The server's own handler still runs; it is put back when the app stops.
    Elsewhere (not the main thread, as under a test client) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        # No lock may be taken in a signal handler (the main thread may hold it).
        threading.Thread(target=feed.shut_down, name="live-feed-close", daemon=True).start()
        chained = previous.get(signal.Signals(signum))
        if callable(chained):
            chained(signum, frame)

    for sig, old in previous.items():
        if callable(old):  # only where a server installed its own handler
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            if callable(old) and signal.getsignal(sig) is handler:
                signal.signal(sig, old)
