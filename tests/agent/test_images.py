"""The agent's image manager over the session's real dockerd: a build's output and result,
its deadline, line cutting, and a push refused before it starts."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator

import docker
import pytest
from support.dockerd import DockerServer

from gpuyard.agent.image_models import MAX_MESSAGE_LENGTH
from gpuyard.agent.images import ImageManager
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
