"""The control plane relays an agent's image progress from threads of its own: streams
that wait on a slow agent never take the threads sync routes (login, reads) run in, and a
stream is closed when it ends, however it ends."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager

import anyio

from gpuyard.api.routers.server_images import _streamed
from gpuyard.domain.image_records import ImageProgress, ProgressKind

SLOW_STREAMS = 3


class SlowAgent:
    """Progress that sends one line, then waits until released, as a long pull does."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.closed = 0

    @contextmanager
    def opening(self) -> Iterator[Iterator[ImageProgress]]:
        try:
            yield self._lines()
        finally:
            self.closed += 1

    def _lines(self) -> Iterator[ImageProgress]:
        yield ImageProgress(ProgressKind.STATUS, "pulling")
        assert self.released.wait(30), "the test never released the stream"
        yield ImageProgress(ProgressKind.DONE, "ready")


def test_slow_image_streams_leave_the_shared_threads_to_other_routes() -> None:
    agent = SlowAgent()
    received: list[bytes] = []

    async def main() -> None:
        shared = anyio.to_thread.current_default_thread_limiter()
        shared.total_tokens = SLOW_STREAMS - 1  # fewer shared threads than open streams
        bodies = [_streamed(agent.opening()).body_iterator for _ in range(SLOW_STREAMS)]

        async def follow(body: AsyncIterable[str | bytes | memoryview]) -> None:
            async for chunk in body:
                received.append(bytes(chunk) if not isinstance(chunk, str) else chunk.encode())

        async with anyio.create_task_group() as streams:
            for body in bodies:
                streams.start_soon(follow, body)
            with anyio.fail_after(5):
                while len(received) < SLOW_STREAMS:  # every stream waits on its agent now
                    await anyio.sleep(0.01)
                # A sync route's work still gets a shared thread at once.
                assert await anyio.to_thread.run_sync(lambda: "answered") == "answered"
            agent.released.set()

    anyio.run(main)  # a loop of its own: its default thread limiter is this test's
    assert sum(b'"done"' in chunk for chunk in received) == SLOW_STREAMS
    assert agent.closed == SLOW_STREAMS


def test_a_disconnected_client_closes_the_stream_once_its_read_returns() -> None:
    agent = SlowAgent()
    received: list[object] = []

    async def main() -> None:
        body = _streamed(agent.opening()).body_iterator
        async with anyio.create_task_group() as request:

            async def follow() -> None:
                async for chunk in body:
                    received.append(chunk)

            request.start_soon(follow)
            with anyio.fail_after(5):
                while not received:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.05)  # the next read now waits on the agent
            threading.Timer(0.3, agent.released.set).start()
            request.cancel_scope.cancel()  # the client goes away

    anyio.run(main)
    assert agent.closed == 1
    # The read in flight was waited for, never abandoned in its thread.
    assert agent.released.is_set()
