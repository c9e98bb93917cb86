"""One live feed per process: a single reader of the changes, numbered, fanned out.

The first stream opened starts the reader thread; from then on it polls its
:class:`~gpuyard.services.live.changes.ChangeSource` every ``poll_interval_s``, whatever
the number of open streams (one database read per poll per process, not per client),
until no stream has been open for ``IDLE_STOP_S``.
Each change becomes a :class:`~gpuyard.services.live.subscription.StreamEvent` with
the next sequence number and its wire form (``encode``, given by the API: encoded once
here, whatever the number of streams it goes to); the last ``history`` events are kept
so that a client that reconnects with ``Last-Event-ID`` gets exactly what it missed.

With a bus (``services/bus``: Redis or PostgreSQL LISTEN/NOTIFY), the reader reads only
when a process announces a commit of workloads or servers (``BusChanges``), and every
``BUS_RECOVERY_POLL_S`` in case a notice was lost; while the bus is down it polls every
``poll_interval_s`` again. What it reads is always the database, by watermark, so a late
or lost notice delays an event and never loses one.

Event ids are ``<epoch>-<seq>``: the epoch is drawn when the feed is made, so an id from
another process (another API replica, or this one before a restart) is recognised as
such and answered with a resync, never with a wrong replay.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.live.changes import BusChanges, Change, ChangeSource
from gpuyard.services.live.subscription import Resync, StreamEvent, Subscription, Viewer

log = get_logger(__name__)

#: The longest Last-Event-ID looked at; anything longer is refused by the API.
MAX_EVENT_ID_LENGTH = 64
#: The reader stops after this long without an open stream (a stream that reconnects
#: within it resumes; after it, an old id gets a resync).
IDLE_STOP_S = 60.0
#: With a live bus, the reader also reads this often without a notice (one may be lost).
BUS_RECOVERY_POLL_S = 2.0
_EVENT_ID = re.compile(r"([0-9a-f]{8})-([0-9]{1,18})")


class LiveFeed:
    """The process's live feed (see the module docstring). Thread-safe."""

    def __init__(
        self,
        source: ChangeSource,
        poll_interval_s: float,
        history: int,
        *,
        epoch: str | None = None,
        idle_stop_s: float = IDLE_STOP_S,
        encode: Callable[[Change], str] | None = None,
    ) -> None:
        self.source = source
        #: A change's wire form (the API's ``data:``), once per event; None: no data.
        self.encode = encode
        self.poll_interval_s = poll_interval_s
        self.idle_stop_s = idle_stop_s
        self.epoch = epoch or secrets.token_hex(4)
        self._history: deque[StreamEvent] = deque(maxlen=history)
        self._seq = 0
        self._subscribers: set[Subscription] = set()
        #: Guards the subscribers, the history and the reader's handle; never held
        #: across I/O.
        self._lock = threading.Lock()
        #: Serialises starting the reader (its first database read).
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._shutting_down = False
        self._started = False
        #: Set by a notice of a commit (a :class:`BusChanges` source) or by close().
        self._nudge = threading.Event()
        if isinstance(source, BusChanges):
            source.on_change(self._nudge.set)

    # -- ids -------------------------------------------------------------------------
    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def parse_event_id(self, value: str) -> int | None:
        """The sequence number of one of this feed's ids; None for anything else."""
        found = _EVENT_ID.fullmatch(value.strip())
        if found is None or found.group(1) != self.epoch:
            return None
        return int(found.group(2))

    # -- subscribers -----------------------------------------------------------------
    def subscribe(
        self,
        viewer: Viewer,
        loop: asyncio.AbstractEventLoop,
        max_queued: int,
        last_event_id: str | None = None,
    ) -> Subscription:
        """Open a stream for ``viewer`` on ``loop``. With ``last_event_id`` the events
        after it are replayed when the history still holds them; otherwise (an id from
        elsewhere, too old, or not one of ours) the stream starts with a resync. Starts
        the reader on first use (one database read, in the calling thread: call it from
        a worker thread, not an event loop)."""
        while True:
            with self._lock:
                if self._thread is not None or self._shutting_down:
                    return self._register(viewer, loop, max_queued, last_event_id)
            self._start_reader()

    def _register(
        self,
        viewer: Viewer,
        loop: asyncio.AbstractEventLoop,
        max_queued: int,
        last_event_id: str | None,
    ) -> Subscription:
        # Under self._lock, with the reader running (or the server going).
        resumed_from, backlog = self._resume(last_event_id)
        subscription = Subscription(viewer, loop, max_queued, last_seq=resumed_from)
        if self._shutting_down:
            subscription.close()  # the server is going: end at once, never hold it
            return subscription
        if backlog:
            subscription.deliver(backlog)
        self._subscribers.add(subscription)
        return subscription

    def _resume(self, last_event_id: str | None) -> tuple[int, list[StreamEvent | Resync]]:
        """Where a stream starts (the last event it has had) and what it gets first."""
        now = self._seq
        if last_event_id is None:
            return now, []
        seen = self.parse_event_id(last_event_id)
        oldest = self._history[0].seq if self._history else now + 1
        if seen is None:
            return now, [Resync(now, "the last event id is not one of this server's")]
        if seen > now:
            return now, [Resync(now, "the last event id is newer than this stream")]
        if seen < oldest - 1:
            return now, [Resync(now, "the events after the last event id are gone")]
        return seen, [event for event in self._history if event.seq > seen]

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    # -- the reader ------------------------------------------------------------------
    def _start_reader(self) -> None:
        # One starter at a time; the database read happens outside self._lock, which the
        # event loop's threads take too (closing a stream) and must never wait on I/O.
        with self._start_lock:
            with self._lock:
                if self._thread is not None or self._shutting_down:
                    return
            # Before the thread exists: changes committed once this returns are seen.
            self.source.start()
            with self._lock:
                self._stop.clear()
                if self._started:
                    # What changed while stopped was not read: no old id may resume.
                    self.epoch = secrets.token_hex(4)
                    self._history.clear()
                self._started = True
                self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        idle_since: float | None = None
        # A reader replaced after a close (whose join timed out) stops at its next turn.
        while self._thread is me and self._wait_turn():
            self.poll_once()
            with self._lock:
                if self._subscribers:
                    idle_since = None
                    continue
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= self.idle_stop_s and self._thread is me:
                    # Nobody has listened for a while: stop reading; the next stream
                    # starts the reader again (under a new epoch).
                    self._thread = None
                    return

    def _wait_turn(self) -> bool:
        """Wait until the next read: a notice (or the recovery interval) while the bus
        is live, else the poll interval. False when the feed stops."""
        source = self.source
        if isinstance(source, BusChanges) and source.live:
            self._nudge.wait(BUS_RECOVERY_POLL_S)
            # Cleared before the read: a notice arriving from here on is read now or
            # wakes the next turn.
            self._nudge.clear()
        else:
            self._stop.wait(self.poll_interval_s)
        return not self._stop.is_set()

    def poll_once(self) -> list[StreamEvent]:
        """Read the source once and publish what it returned (the reader thread's tick;
        callable directly where no thread runs)."""
        try:
            changes = self.source.poll()
        except Exception:  # the database is away: nothing is lost, the watermark stays
            if not self._failing:
                log.exception("live feed: reading changes failed; retrying")
            self._failing = True
            return []
        if self._failing:
            log.info("live feed: reading changes works again")
            self._failing = False
        return self.publish(changes)

    def publish(self, changes: list[Change]) -> list[StreamEvent]:
        """Number ``changes``, keep them for resumes and hand them to every stream."""
        if not changes:
            return []
        # Once per change, outside the lock; each stream still drops what its viewer may
        # not read (Subscription.deliver).
        encoded = [(change, self._encoded(change)) for change in changes]
        with self._lock:
            events = []
            for change, data in encoded:
                if data is None:
                    continue
                self._seq += 1
                events.append(StreamEvent(self._seq, change, data))
            self._history.extend(events)
            gone = [s for s in self._subscribers if not s.deliver(events)]
            self._subscribers.difference_update(gone)
        return events

    def _encoded(self, change: Change) -> str | None:
        """The change's wire form; None (the change is skipped, logged) when it cannot be
        encoded: one bad row must not stop the reader for every stream."""
        if self.encode is None:
            return ""
        try:
            return self.encode(change)
        except Exception:
            log.exception("live feed: encoding a change failed; skipped")
            return None

    def close(self) -> None:
        """Stop the reader and end every open stream (the app stopped). A stream opened
        later starts the reader again under a new epoch (a test client entered twice):
        what changed meanwhile was not read, so old ids get a resync."""
        with self._lock:
            self._stop.set()
            self._nudge.set()
            subscribers = list(self._subscribers)
            self._subscribers.clear()
            thread, self._thread = self._thread, None
        for subscription in subscribers:
            subscription.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, 2 * self.poll_interval_s))

    def shut_down(self) -> None:
        """:meth:`close`, for good: the server is shutting down, so a stream opened from
        now on ends at once instead of holding the shutdown up."""
        with self._lock:
            self._shutting_down = True
        self.close()


def build_live_feed(ctx: ServiceContext, encode: Callable[[Change], str]) -> LiveFeed:
    """The feed of an app over ``ctx``: the database's changes, as settings say, each
    encoded once by ``encode``."""
    settings = ctx.settings
    return LiveFeed(
        BusChanges(ctx.db, ctx.bus),
        settings.stream_poll_interval_s,
        settings.stream_history,
        encode=encode,
    )
