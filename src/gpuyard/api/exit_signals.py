"""Ending open streams when the server is told to stop.

uvicorn's graceful shutdown waits for every open response before it runs the app's
lifespan shutdown, so a live stream, which never ends by itself, would hold it up
forever (a second Ctrl-C, or a SIGKILL, would be needed)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gpuyard.services.live.feed import LiveFeed


@contextmanager
def streams_end_on_exit_signals(feed: LiveFeed) -> Iterator[None]:
    """While the app runs in a server that handles SIGINT/SIGTERM in Python (uvicorn),
    end every open stream as soon as one arrives: uvicorn's graceful shutdown waits for
    open responses before it tells the app, so a stream would otherwise hold it up
    forever. The server's own handler still runs; it is put back when the app stops.
    Elsewhere (not the main thread, as under a test client) this does nothing.

    Enter it on the server's event loop (the app's lifespan): the handler only queues the
    closing on that loop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def close_streams() -> None:
        # On the loop, outside the handler: closing joins the feed's reader, so a thread.
        threading.Thread(target=feed.shut_down, name="live-feed-close", daemon=True).start()

    def handler(signum: int, frame: Any) -> None:
        # No lock may be taken in a signal handler: the main thread may hold it, and
        # Thread.start takes threading's locks. call_soon_threadsafe takes none (a deque
        # append and a byte to the loop's self-pipe, as asyncio's own signal handling).
        with contextlib.suppress(RuntimeError):  # the loop is closed: no stream is left
            loop.call_soon_threadsafe(close_streams)
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
