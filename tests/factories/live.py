"""The live stream over real HTTP: an app in uvicorn on 127.0.0.1, and a reader that
consumes GET /api/v1/stream as a browser's EventSource would (httpx-sse), in a thread."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from httpx_sse import connect_sse
from support.local_server import free_port


@contextmanager
def served(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """``app`` in uvicorn on ``port`` (default: a free one), in a thread; yields its base
    URL. Stopping ends the app's open streams first, as SIGTERM does under a real uvicorn
    (api/exit_signals.py, which a server outside the main thread does not install), and
    fails the test if uvicorn does not finish shutting down within 30 s (the lifespan's
    shutdown joins the loops and the bus: on a loaded 2-core box with parallel test
    workers, 10 s was once not enough)."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        feed = getattr(app.state, "live_feed", None)
        if feed is not None:
            feed.shut_down()
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "uvicorn did not shut down"


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: Any


class StreamReader:
    """Reads one stream in a thread; its events arrive in :attr:`events`."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        last_event_id: str | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.status: int | None = None
        self.ended = threading.Event()
        self.error: BaseException | None = None
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self._client = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30))
        self._opened = threading.Event()
        self._params = params or {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._opened.wait(20), "the stream did not open"
        assert self.status == 200, self.status

    def _read(self) -> None:
        try:
            with connect_sse(self._client, "GET", "/api/v1/stream", params=self._params) as src:
                self.status = src.response.status_code
                self._opened.set()
                for sse in src.iter_sse():
                    if not sse.data:  # a retry hint alone: EventSource dispatches nothing
                        continue
                    self.events.put(Event(sse.id, sse.event, sse.json()))
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.StreamClosed):
            pass  # closed by close(), or by the server
        except BaseException as exc:  # reported by the test that reads
            self.error = exc
        finally:
            self._opened.set()
            self.ended.set()

    def next(self, timeout: float = 10.0) -> Event:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s ({self.error!r})") from None

    def wait_for(self, match: Callable[[Event], bool], timeout: float = 10.0) -> list[Event]:
        """Events up to and including the first that matches (fails after ``timeout``)."""
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(event)
            if match(event):
                return seen

    def wait_for_each(
        self, matches: Sequence[Callable[[Event], bool]], timeout: float = 10.0
    ) -> list[Event]:
        """Events up to and including the one by which each of ``matches`` has matched
        an event, in whatever order they come: changes committed together reach the
        stream in no order the test should rely on (fails after ``timeout``)."""
        seen: list[Event] = []
        waiting = list(matches)
        deadline = time.monotonic() + timeout
        while waiting:
            event = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(event)
            waiting = [match for match in waiting if not match(event)]
        return seen

    def drain(self, quiet_s: float = 0.5) -> list[Event]:
        """What arrives until nothing has for ``quiet_s``."""
        seen: list[Event] = []
        while True:
            try:
                seen.append(self.events.get(timeout=quiet_s))
            except queue.Empty:
                return seen

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


def is_workload(workload_id: str, status: str | None = None) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        return (
            event.event == "workload"
            and event.data["id"] == workload_id
            and (status is None or event.data["status"] == status)
        )

    return match


def is_placed(workload_id: str) -> Callable[[Event], bool]:
    """A workload event of ``workload_id`` with a placement (a server)."""
    on_workload = is_workload(workload_id)

    def match(event: Event) -> bool:
        return on_workload(event) and bool(event.data["server_id"])

    return match
