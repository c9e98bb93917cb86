"""One open stream: who reads it, and the events waiting for it.

A :class:`Subscription` lives on the event loop of the request that opened it. The
feed's reader thread hands it batches with :meth:`Subscription.deliver` (thread-safe);
the events its :class:`Viewer` may not read are dropped there, so nothing of another
user's workload is ever queued for it. At most ``max_queued`` events wait: a client
that does not keep up loses its queue and gets one :class:`Resync` instead, so a slow
client never holds memory without bound nor slows anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Membership, Permission, Target, allows
from gpuyard.services.live.changes import Change, QueueChanged, ServerChanged, WorkloadChanged

#: Kinds of events a stream may ask for (``?types=``).
WORKLOADS, SERVERS, QUEUE = "workloads", "servers", "queue"
KINDS = (WORKLOADS, SERVERS, QUEUE)


@dataclass(frozen=True, eq=False)
class StreamEvent:
    """One change, numbered in this process's stream (``seq`` grows by one per event)."""

    seq: int
    change: Change
    #: The change's wire form, encoded once by the feed for every stream it goes to.
    data: str = ""

    @property
    def kind(self) -> str:
        match self.change:
            case WorkloadChanged():
                return WORKLOADS
            case ServerChanged():
                return SERVERS
            case QueueChanged():
                return QUEUE


@dataclass(frozen=True)
class Resync:
    """The stream cannot say what was missed: refetch everything, then carry on from
    ``seq``."""

    seq: int
    reason: str


@dataclass
class Viewer:
    """The reader of a stream as the permission policy sees it. ``caller`` and
    ``membership`` are refreshed while the stream is open (a changed role or team)."""

    caller: Caller
    membership: Membership
    kinds: frozenset[str] = frozenset(KINDS)

    def may_read(self, change: Change) -> bool:
        """The same policy as the reads: a workload by WORKLOAD_READ on its owner and
        team, servers by FLEET_READ, the queue by WORKLOAD_READ (a queue event carries no
        data: like GET /queue's global positions, it says only that the queue moved)."""
        caller = self.caller
        match change:
            case WorkloadChanged(workload=workload):
                target = Target(owner_id=workload.owner_id, team_id=workload.team_id)
                return WORKLOADS in self.kinds and allows(
                    caller.role, caller.user_id, Permission.WORKLOAD_READ, target, self.membership
                )
            case ServerChanged():
                return SERVERS in self.kinds and allows(
                    caller.role, caller.user_id, Permission.FLEET_READ
                )
            case QueueChanged():
                return QUEUE in self.kinds and allows(
                    caller.role, caller.user_id, Permission.WORKLOAD_READ
                )
        return False  # pragma: no cover - every Change is matched above


@dataclass(eq=False)
class Subscription:
    """The events waiting for one open stream (see the module docstring)."""

    viewer: Viewer
    loop: asyncio.AbstractEventLoop
    max_queued: int
    #: The last event this stream has had (or skipped as not its own).
    last_seq: int
    _queue: deque[StreamEvent | Resync] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def deliver(self, events: Sequence[StreamEvent | Resync]) -> bool:
        """Hand events over from any thread; False when this stream's loop is gone."""
        try:
            self.loop.call_soon_threadsafe(self._offer, events)
        except RuntimeError:  # the loop is closed: the request is over
            return False
        return True

    def close(self) -> None:
        """End the stream (from any thread): the server is shutting down."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to end
            self.loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self.closed = True
        self._ready.set()

    def _offer(self, events: Sequence[StreamEvent | Resync]) -> None:
        for event in events:
            if event.seq <= self.last_seq and isinstance(event, StreamEvent):
                continue
            self.last_seq = max(self.last_seq, event.seq)
            if isinstance(event, StreamEvent) and not self.viewer.may_read(event.change):
                continue
            if len(self._queue) >= self.max_queued:
                self._queue.clear()
                event = Resync(self.last_seq, "the client fell behind")
            self._queue.append(event)
        if self._queue:
            self._ready.set()

    async def next(self, timeout: float) -> list[StreamEvent | Resync] | None:
        """The events waiting (at least one), [] after ``timeout`` seconds without any,
        or None once the stream is closed."""
        if not self._queue and not self.closed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        self._ready.clear()
        if self.closed:
            return None
        events = list(self._queue)
        self._queue.clear()
        return events
