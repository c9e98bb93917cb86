"""Images on a real Docker host through the whole stack: the API, the control plane's
agent client, a real agent over the session's dockerd, and a real registry
(docker-registry on 127.0.0.1 with a password): build from an uploaded Dockerfile and
context, push, remove the local copy, pull it back, find it present, run it."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import authed_client, make_context, make_settings
from factories.docker_fleet import Fleet, docker_fleet
from fastapi.testclient import TestClient
from sqlalchemy import text
from support.dockerd import DockerServer
from support.registry import RegistryServer

from gpuyard.services.context import ServiceContext

NDJSON = "application/x-ndjson"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", None, demo=False))
    yield context
    context.db.dispose()


@pytest.fixture
def fleet(ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path) -> Iterator[Fleet]:
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as made:
        yield made


def build_context(base_image: str, marker: str) -> bytes:
    """A tar holding a Dockerfile FROM the imported busybox that writes ``marker``."""
    dockerfile = (
        f'FROM {base_image}\nRUN echo {marker} | tee /hello\nCMD ["cat", "/hello"]\n'
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    return buffer.getvalue()


def streamed(client: TestClient, path: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The NDJSON lines of a streamed operation (asserting it was one)."""
    with client.stream("POST", path, **kwargs) as response:
        if response.status_code != 200:
            response.read()
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(NDJSON)
        return [json.loads(line) for line in response.iter_lines() if line]


def registry_tags(registry: RegistryServer, repository: str) -> list[str]:
    request = urllib.request.Request(f"http://{registry.address}/v2/{repository}/tags/list")
    secret = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {secret}")
    with urllib.request.urlopen(request, timeout=10) as response:
        tags: list[str] = json.load(response).get("tags") or []
    return tags


def present_tags(client: TestClient, server_id: str) -> set[str]:
    response = client.get(f"/api/v1/servers/{server_id}/images")
    assert response.status_code == 200, response.text
    return {tag for image in response.json()["data"] for tag in image["tags"]}


def test_build_push_pull_through_a_local_registry(
    ctx: ServiceContext, fleet: Fleet, dockerd: DockerServer, registry_server: RegistryServer
) -> None:
    client = authed_client(ctx)
    server_id = fleet.servers["host-a"]
    registry = client.post(
        "/api/v1/registries",
        json={
            "name": "local",
            "url": f"http://{registry_server.address}",
            "username": registry_server.username,
            "password": registry_server.password,
        },
    ).json()
    assert registry["insecure"] is True
    marker = f"built-by-gpuyard-{uuid.uuid4().hex[:8]}"
    tag = f"gpuyard-test/app:{marker}"

    # 1. Build from an uploaded Dockerfile and context; the build's output streams back.
    build = streamed(
        client,
        f"/api/v1/servers/{server_id}/images/build",
        params={"tag": tag},
        content=build_context(dockerd.image, marker),
        headers={"Content-Type": "application/x-tar"},
    )
    logs = [line["message"] for line in build if line["kind"] == "log"]
    assert any(marker in message for message in logs), logs
    assert build[-1]["kind"] == "done", build[-1]
    assert build[-1]["image"].startswith("sha256:")
    assert tag in present_tags(client, server_id)

    # 2. Push it to the registry (its credentials decrypted for this call only).
    pushed = streamed(
        client,
        f"/api/v1/servers/{server_id}/images/push",
        json={"source": tag, "registry_id": registry["id"]},
    )
    assert pushed[-1]["kind"] == "done", pushed
    assert pushed[-1]["image"].startswith("sha256:")  # the manifest digest the registry gave
    assert any(line["layer"] for line in pushed if line["kind"] == "status")
    target = f"{registry_server.address}/{tag}"
    assert marker in registry_tags(registry_server, "gpuyard-test/app")

    # 3. Remove every local copy (through the API), then pull it back with progress.
    images = f"/api/v1/servers/{server_id}/images"
    for name in (tag, target):
        assert client.delete(images, params={"reference": name}).status_code == 204
    assert not {tag, target} & present_tags(client, server_id)
    gone = client.delete(images, params={"reference": tag})
    assert gone.status_code == 404, gone.text
    pulled = streamed(
        client, f"/api/v1/servers/{server_id}/images/pull", json={"reference": target}
    )
    assert pulled[-1]["kind"] == "done", pulled
    assert any(line["kind"] == "status" and line["layer"] for line in pulled), pulled

    # A tag the registry does not have is refused before anything streams.
    absent = client.post(
        f"/api/v1/servers/{server_id}/images/pull", json={"reference": f"{target}-absent"}
    )
    assert absent.status_code == 422, absent.text
    assert [e["field"] for e in absent.json()["errors"]] == ["reference"]

    # 4. It is present again, and it is the image that was built.
    assert target in present_tags(client, server_id)
    container = fleet.docker.containers.run(target, detach=True)
    container.wait(timeout=30)
    assert container.logs().decode().strip() == marker
    # An image a container uses stays, unless forced (the container is stopped).
    in_use = client.delete(images, params={"reference": target})
    assert in_use.status_code == 409, in_use.text
    forced = client.delete(images, params={"reference": target, "force": True})
    assert forced.status_code == 204, forced.text
    container.remove()

    # Each operation is audited, and the registry's password is nowhere in the trail.
    with ctx.db.read() as session:
        rows = session.execute(
            text("SELECT action, details FROM audit_events WHERE action LIKE 'image.%'")
        ).all()
    actions = [action for action, _ in rows]
    assert actions == [
        "image.build", "image.push", "image.remove", "image.remove", "image.pull", "image.remove",
    ]  # fmt: skip
    assert registry_server.password not in json.dumps([str(d) for _, d in rows])


def test_refusals_on_a_docker_host(
    ctx: ServiceContext, fleet: Fleet, registry_server: RegistryServer
) -> None:
    client = authed_client(ctx)
    server_id = fleet.servers["host-a"]
    registry = client.post(
        "/api/v1/registries",
        json={
            "name": "wrong",
            "url": registry_server.address,
            "username": "pusher",
            "password": "nope",
        },
    ).json()

    # Pushing an image the host does not have is refused before anything streams.
    missing = client.post(
        f"/api/v1/servers/{server_id}/images/push",
        json={"source": "gpuyard-test/absent:1", "registry_id": registry["id"]},
    )
    assert missing.status_code == 422, missing.text
    assert [e["field"] for e in missing.json()["errors"]] == ["source"]

    # A wrong password: the registry refuses the push, the stream's last line says so.
    pushed = streamed(
        client,
        f"/api/v1/servers/{server_id}/images/push",
        json={"source": "gpuyard-test/busybox:latest", "registry_id": registry["id"]},
    )
    assert pushed[-1]["kind"] == "error", pushed
    assert "auth" in pushed[-1]["message"].lower(), pushed[-1]

    # A pull with credentials the registry refuses (a configured registry at the
    # reference's address lends them): refused before anything streams.
    absent = client.post(
        f"/api/v1/servers/{server_id}/images/pull",
        json={"reference": f"{registry_server.address}/gpuyard-test/none:1"},
    )
    assert absent.status_code == 422, absent.text
    assert [e["field"] for e in absent.json()["errors"]] == ["registry_id"]

    # A build whose Dockerfile fails ends with an error line naming the failure.
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        body = b"FROM gpuyard-test/busybox:latest\nRUN exit 3\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    failed = streamed(
        client,
        f"/api/v1/servers/{server_id}/images/build",
        params={"tag": "gpuyard-test/fails:1"},
        content=context.getvalue(),
        headers={"Content-Type": "application/x-tar"},
    )
    assert failed[-1]["kind"] == "error", failed
    assert "non-zero code: 3" in failed[-1]["message"]
