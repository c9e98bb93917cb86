"""An exit signal ends the open streams without taking a lock in the signal handler: the
handler only queues the closing on the server's event loop (a lock the interrupted main
thread holds, such as the one Thread.start takes, would hang the shutdown)."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType

from gpuyard.api.exit_signals import streams_end_on_exit_signals
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Membership
from gpuyard.auth.roles import Role
from gpuyard.services.live.changes import Change
from gpuyard.services.live.feed import LiveFeed
from gpuyard.services.live.subscription import Viewer

ADMIN = Viewer(Caller("admin-id", "admin@example.com", Role.ADMIN), Membership())


class NoChanges:
    """A change source with nothing to say (the feed's closing alone)."""

    def start(self) -> None:
        pass

    def poll(self) -> list[Change]:
        return []


async def _signal_with_a_stream_open(chained: list[int]) -> None:
    feed = LiveFeed(NoChanges(), poll_interval_s=3600, history=10)
    stream = feed.subscribe(ADMIN, asyncio.get_running_loop(), 10)
    with streams_end_on_exit_signals(feed):
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        threads = set(threading.enumerate())
        handler(signal.SIGTERM, None)
        # Nothing started inside the handler (Thread.start takes threading's locks).
        assert set(threading.enumerate()) == threads
        assert chained == [signal.SIGTERM]  # the server's own handler still ran
        assert await stream.next(timeout=30) is None  # once the loop runs: ended
    # A stream opened from now on ends at once (the server is going).
    late = feed.subscribe(ADMIN, asyncio.get_running_loop(), 10)
    assert await late.next(timeout=30) is None


def test_an_exit_signal_ends_the_streams_from_the_event_loop() -> None:
    chained: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        chained.append(signum)

    previous = signal.signal(signal.SIGTERM, server_handler)
    try:
        asyncio.run(_signal_with_a_stream_open(chained))
        assert signal.getsignal(signal.SIGTERM) is server_handler  # put back on exit
    finally:
        signal.signal(signal.SIGTERM, previous)
