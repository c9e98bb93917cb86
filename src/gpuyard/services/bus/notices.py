"""Notices, and the bus that carries them between processes (see the package docstring)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gpuyard.log import get_logger

log = get_logger(__name__)

#: A notice's kind: ``change`` (rows of ``id``, a table, committed), ``wake`` (the loop
#: ``id`` has work), ``callers`` (an account or credential changed: forget resolved
#: callers), ``resync`` (local only: notices may have been lost, act as if all came).
NoticeKind = Literal["change", "wake", "callers", "resync"]
_KINDS: frozenset[str] = frozenset({"change", "wake", "callers"})
#: Longest payload read from the wire; anything longer is not ours and is dropped.
MAX_PAYLOAD = 512
#: The listener's reconnect backoff: first wait, growth, longest wait. It starts again
#: from the first only after a subscription that lasted ``BACKOFF_MAX_S`` (a flapping
#: transport, subscribing and dropping at once, must not resync every loop ten times a
#: second); each wait is drawn in [half, all] of it, so processes do not reconnect in step.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True)
class Notice:
    """Something committed that other processes may act on: a hint, never the truth."""

    kind: NoticeKind
    id: str = ""


@dataclass(frozen=True)
class BusHealth:
    """What the bus is doing now: ``transport`` ("redis", "postgres" or "none") and
    ``state``: "connected", "down" (since ``since``), "starting" or "off"."""

    transport: str
    state: Literal["connected", "down", "starting", "off"]
    since: datetime | None = None

    def describe(self) -> str:
        if self.state == "down" and self.since is not None:
            return f"down since {self.since.isoformat(timespec='seconds')}"
        return self.state


#: A listener gets each notice and whether this process sent it.
Listener = Callable[[Notice, bool], None]


def encode_notice(notice: Notice, sender: str) -> str:
    return json.dumps({"k": notice.kind, "i": notice.id, "s": sender}, separators=(",", ":"))


def decode_notice(payload: str | bytes) -> tuple[Notice, str] | None:
    """The notice and its sender, or None for anything that is not a well-formed notice
    (the channel is shared with whatever else can publish on it: hostile until checked)."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    kind, ident, sender = data.get("k"), data.get("i", ""), data.get("s", "")
    if kind not in _KINDS or not isinstance(ident, str) or not isinstance(sender, str):
        return None
    return Notice(kind, ident), sender


class ChangeBus:
    """The bus of one process. This base class is the local bus (no other process:
    nothing to connect, never ``live``); subclasses add a transport.

    ``publish`` hands a notice to this process's listeners at once and queues it for the
    other processes (sent by the ``bus-publish`` thread, coalesced, never blocking the
    caller); ``publish_now`` sends it before returning (a revocation, so that the next
    request anywhere is refused)."""

    transport = "none"

    def __init__(self, sender: str) -> None:
        self.sender = sender
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    def add_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    @property
    def live(self) -> bool:
        """Whether other processes' notices arrive now (else: poll)."""
        return False

    def health(self) -> BusHealth:
        return BusHealth(self.transport, "off")

    def publish(self, kind: NoticeKind, ident: str = "") -> None:
        """Tell this process's listeners, and queue the notice for the others."""
        notice = Notice(kind, ident)
        self._deliver(notice, own=True)
        self._queue(notice)

    def publish_now(self, kind: NoticeKind, ident: str = "") -> None:
        """:meth:`publish`, sent to the other processes before returning (best effort:
        if the bus is down they fall back to their own expiry)."""
        notice = Notice(kind, ident)
        self._deliver(notice, own=True)
        self._send_now(notice)

    def start(self) -> None:
        """Connect and listen (threads); the local bus has nothing to start."""

    def stop(self) -> None:
        """Stop listening and publishing; notices published afterwards stay local."""

    # -- for transports ----------------------------------------------------------------
    def _queue(self, notice: Notice) -> None:
        del notice

    def _send_now(self, notice: Notice) -> None:
        del notice

    def _deliver(self, notice: Notice, *, own: bool) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(notice, own)
            except Exception:  # one listener's bug must not stop the others or the thread
                log.exception("bus: a listener failed", kind=notice.kind, id=notice.id)


class ConnectedBus(ChangeBus):
    """A bus over a transport: a publisher thread and a listener thread.

    Subclasses implement :meth:`_send` (deliver notices to the other processes) and
    :meth:`_listen` (block receiving payloads, call ``ready`` once subscribed, return
    soon after ``leave`` is set, raise when the connection fails).

    Whatever fails, sending or listening, the listener subscribes again: a failed send
    marks the bus down and makes the listener leave its subscription, since only a new
    one (``ready``) may mark it connected again and resync. Otherwise a send that timed
    out while the subscription held would leave the bus down for good: this process
    polling, and unheard, while the others think nothing is lost."""

    def __init__(self, sender: str) -> None:
        super().__init__(sender)
        self._stop = threading.Event()
        #: Set by stop() and by any failure: the listener leaves its subscription.
        self._leave = threading.Event()
        self._pending: dict[Notice, None] = {}  # ordered set: repeats coalesce
        self._pending_lock = threading.Lock()
        self._has_pending = threading.Event()
        self._threads: list[threading.Thread] = []
        self._state: Literal["connected", "down", "starting", "off"] = "off"
        self._since: datetime | None = None
        self._state_lock = threading.Lock()
        self._backoff = BACKOFF_FIRST_S
        self._connected_at: float | None = None  # monotonic; set by ready()

    @property
    def live(self) -> bool:
        with self._state_lock:
            return self._state == "connected"

    def health(self) -> BusHealth:
        with self._state_lock:
            return BusHealth(self.transport, self._state, self._since)

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._leave.clear()
        self._set_state("starting")
        for name, target in (
            ("bus-listen", self._listen_forever),
            ("bus-publish", self._publish_forever),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._leave.set()
        self._has_pending.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []
        self._set_state("off")
        self._close()

    # -- publishing ----------------------------------------------------------------------
    def _queue(self, notice: Notice) -> None:
        if not self.live:
            return  # nobody hears it; the others poll while the bus is down
        with self._pending_lock:
            self._pending[notice] = None
        self._has_pending.set()

    def _send_now(self, notice: Notice) -> None:
        if not self.live:
            return
        try:
            self._send([notice])
        except Exception as exc:
            self._went_down(exc)

    def _publish_forever(self) -> None:
        while not self._stop.is_set():
            self._has_pending.wait()
            self._has_pending.clear()
            with self._pending_lock:
                batch, self._pending = list(self._pending), {}
            if not batch or self._stop.is_set():
                continue
            try:
                self._send(batch)
            except Exception as exc:  # hints: dropped; the listener sees the outage too
                self._went_down(exc)

    # -- listening -----------------------------------------------------------------------
    def _listen_forever(self) -> None:
        self._backoff = BACKOFF_FIRST_S
        while not self._stop.is_set():
            # Cleared before subscribing: a failure from here on makes this one leave too.
            self._leave.clear()
            self._connected_at = None
            try:
                self._listen(self._ready, self._received, self._leave)
            except Exception as exc:
                self._went_down(exc)
            # Left: stopping, a failed send (already down), or a failed subscription.
            connected_at = self._connected_at
            if connected_at is not None and time.monotonic() - connected_at >= BACKOFF_MAX_S:
                self._backoff = BACKOFF_FIRST_S
            if self._stop.wait(self._backoff * random.uniform(0.5, 1.0)):
                return
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    def _ready(self) -> None:
        if self._stop.is_set():  # a listener outliving stop() must not say connected
            return
        self._connected_at = time.monotonic()
        with self._state_lock:
            was = self._state
            self._state, self._since = "connected", datetime.now(UTC)
        if was == "down":
            log.info("bus: connected again; back on notices", transport=self.transport)
        # Notices sent while this process was not subscribed are lost: act as if all came.
        self._deliver(Notice("resync"), own=False)

    def _received(self, payload: str | bytes) -> None:
        decoded = decode_notice(payload)
        if decoded is None:
            return
        notice, sender = decoded
        if sender != self.sender:
            self._deliver(notice, own=False)

    def _went_down(self, exc: BaseException) -> None:
        if self._stop.is_set():
            return
        self._leave.set()  # subscribe again: only that may say connected again
        with self._state_lock:
            was = self._state
            if was != "down":
                self._state, self._since = "down", datetime.now(UTC)
        if was != "down":
            log.warning(
                "bus: down; falling back to polling until it is back",
                transport=self.transport,
                error=str(exc) or type(exc).__name__,
            )
            # Whatever was in flight may be lost: act on the database now.
            self._deliver(Notice("resync"), own=False)

    def _set_state(self, state: Literal["connected", "down", "starting", "off"]) -> None:
        with self._state_lock:
            self._state, self._since = state, datetime.now(UTC)

    # -- the transport -------------------------------------------------------------------
    def _send(self, notices: Iterable[Notice]) -> None:
        raise NotImplementedError

    def _listen(
        self,
        ready: Callable[[], None],
        received: Callable[[str | bytes], None],
        stop: threading.Event,
    ) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Close the transport's connections (after the threads stopped)."""
