"""The agent's image manager over the session's real dockerd: a build's output and result,
its deadline, line cutting, and a push refused before it starts."""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator

import anyio
import docker
import pytest
from support.dockerd import DockerServer

from gpuyard.agent.errors import RuntimeUnavailable
from gpuyard.agent.image_models import MAX_MESSAGE_LENGTH, ProgressLine
from gpuyard.agent.images import ImageManager
from gpuyard.agent.routers.images import IMAGE_STREAMS, _relay
from gpuyard.domain.errors import InvalidInput


@pytest.fixture
def client(dockerd: DockerServer) -> Iterator[docker.DockerClient]:
    made = dockerd.client()
    yield made
    made.close()


def context(dockerfile: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        body = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    buffer.seek(0)
    return buffer


def test_a_build_streams_its_output_and_names_the_image(
    client: docker.DockerClient, dockerd: DockerServer
) -> None:
    tag = f"agent-test/build:{uuid.uuid4().hex[:8]}"
    long_line = "y" * (MAX_MESSAGE_LENGTH + 500)
    lines = list(
        ImageManager(client, deadline_s=120).build(
            context(f"FROM {dockerd.image}\nRUN echo {long_line}\n"), tag, "Dockerfile"
        )
    )
    assert lines[-1].kind == "done"
    assert lines[-1].image == client.images.get(tag).id
    assert all(len(line.message) <= MAX_MESSAGE_LENGTH for line in lines)
    step = next(line for line in lines if line.message.startswith("Step 2/2 : RUN echo yyy"))
    assert len(step.message) == MAX_MESSAGE_LENGTH
    assert step.message.endswith("…")
    assert all(line.message.strip() for line in lines)  # no empty lines
    assert f"image {lines[-1].image}" in [line.message for line in lines]
    client.images.remove(tag, force=True)


def test_a_build_past_its_deadline_stops_with_an_error(
    client: docker.DockerClient, dockerd: DockerServer
) -> None:
    dockerfile = f"FROM {dockerd.image}\nRUN sleep 1\nRUN sleep 1\n"
    lines = list(
        ImageManager(client, deadline_s=0.5).build(context(dockerfile), "x:1", "Dockerfile")
    )
    assert lines[-1].kind == "error"
    assert "stopped after" in lines[-1].message
    assert not any(line.kind == "done" for line in lines)


def test_pushing_an_absent_image_is_refused_before_it_starts(client: docker.DockerClient) -> None:
    with pytest.raises(InvalidInput) as refused:
        ImageManager(client, deadline_s=60).push("agent-test/absent:1", "127.0.0.1:1/a:1", None)
    assert [e.field for e in refused.value.errors] == ["source"]


@pytest.fixture
def silent_registry() -> Iterator[int]:
    """A port that accepts connections and never says a word, as a registry gone quiet."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    yield listener.getsockname()[1]
    stop.set()
    acceptor.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_pull_from_a_silent_registry_stops_at_its_deadline(
    client: docker.DockerClient, silent_registry: int
) -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeUnavailable, match="in 2 s"):  # Docker has not answered yet
        ImageManager(client, deadline_s=2).pull(f"127.0.0.1:{silent_registry}/s:1", None)
    assert time.monotonic() - started < 6


def test_closing_a_stream_ends_the_read_in_flight(
    client: docker.DockerClient, dockerd: DockerServer
) -> None:
    dockerfile = f"FROM {dockerd.image}\nRUN sleep 60\n"
    stream = ImageManager(client, deadline_s=120).build(context(dockerfile), "x:1", "Dockerfile")
    seen: list[ProgressLine] = []
    ended = threading.Event()

    def read() -> None:
        seen.extend(stream)  # blocks while the RUN step is silent
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not any("RUN sleep 60" in line.message for line in seen):
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)
    time.sleep(0.3)  # the reader now waits on Docker's silent stream
    started = time.monotonic()
    stream.close()  # as on a disconnect: returns only once the read in flight has ended
    assert ended.wait(1)
    assert time.monotonic() - started < 5
    assert seen[-1].kind == "error"
    assert not any(line.kind == "done" for line in seen)


def test_a_disconnect_gives_the_slot_back_only_once_the_read_has_ended(
    client: docker.DockerClient, dockerd: DockerServer
) -> None:
    dockerfile = f"FROM {dockerd.image}\nRUN sleep 60\n"
    stream = ImageManager(client, deadline_s=120).build(context(dockerfile), "x:1", "Dockerfile")
    sent: list[bytes] = []
    slots_while_open: list[float] = []

    async def request() -> None:
        async with anyio.create_task_group() as response:

            async def relay() -> None:
                async for chunk in _relay(stream):
                    sent.append(chunk)

            response.start_soon(relay)
            with anyio.fail_after(30):
                while not any(b"RUN sleep 60" in chunk for chunk in sent):
                    await anyio.sleep(0.05)
            await anyio.sleep(0.3)  # the read in flight now waits on Docker's silent stream
            slots_while_open.append(IMAGE_STREAMS.borrowed_tokens)
            response.cancel_scope.cancel()  # the control plane went away

    started = time.monotonic()
    anyio.run(request)
    assert time.monotonic() - started < 35  # the silent read was ended, not waited out
    assert slots_while_open == [1]
    assert IMAGE_STREAMS.borrowed_tokens == 0
    assert stream._reading.acquire(blocking=False)  # no thread is reading it any more
    stream._reading.release()
    assert next(stream, None) is None  # and Docker's stream is closed


def test_a_push_to_a_silent_registry_stops_at_its_deadline(
    client: docker.DockerClient, dockerd: DockerServer, silent_registry: int
) -> None:
    target = f"127.0.0.1:{silent_registry}/quiet/push:{uuid.uuid4().hex[:8]}"
    streams = docker.DockerClient(base_url=dockerd.url, timeout=2)  # as the agent's app makes
    started = time.monotonic()
    lines = list(
        ImageManager(client, deadline_s=2, streams=streams).push(dockerd.image, target, None)
    )
    elapsed = time.monotonic() - started
    streams.close()
    client.images.remove(target, force=True)
    assert (lines[-1].kind, lines[-1].message) == ("error", "stopped after 2 s")
    assert not any(line.kind == "done" for line in lines)
    assert elapsed < 8  # the deadline, not Docker's own minutes of retries
