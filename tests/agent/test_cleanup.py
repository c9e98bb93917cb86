"""Host cleanup against the session's real dockerd, through the agent's HTTP API: what is
gpuyard's and left behind goes (a dry run only lists it, with the same sizes), and nothing
else is touched."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import httpx
import pytest
from docker.errors import NotFound
from hypothesis import given, settings
from hypothesis import strategies as st
from support.dockerd import DockerServer

from gpuyard.agent.cleanup import HostCleaner, docker_time
from gpuyard.agent.cleanup_models import CleanupReport, CleanupRequest
from gpuyard.agent.files import Workspaces
from gpuyard.agent.gpus import probe_gpus
from gpuyard.agent.models import LABEL_AGENT

from .builders import make_spec
from .conftest import RunningAgent, run_agent


@pytest.fixture
def agent(dockerd: DockerServer, tmp_path: Path) -> Iterator[RunningAgent]:
    """An agent of its own per test: a cleanup with no retention takes every leftover of
    its agent, so tests must not share one."""
    with run_agent(dockerd, tmp_path / "agent", f"clean-{uuid.uuid4().hex[:8]}", probe_gpus) as a:
        yield a


@pytest.fixture
def api(agent: RunningAgent) -> Iterator[httpx.Client]:
    with agent.http() as client:
        yield client


def tiny_image(client: docker.DockerClient, repository: str, *labels: str) -> str:
    """An image made with ``docker import`` (a file and labels); returns its id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        body = uuid.uuid4().bytes * 1024  # 16 KiB, different for every image
        info = tarfile.TarInfo("data")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    client.api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag="v", changes=[f"LABEL {x}" for x in labels]
    )
    return str(client.api.inspect_image(f"{repository}:v")["Id"])  # type: ignore[no-untyped-call]


def dangling_image(client: docker.DockerClient, *labels: str) -> str:
    """An untagged image: imported, then its tag taken by a newer import."""
    repository = f"gy-clean/{uuid.uuid4().hex[:8]}"
    old = tiny_image(client, repository, *labels)
    tiny_image(client, repository, *labels)
    assert not client.api.inspect_image(old)["RepoTags"]  # type: ignore[no-untyped-call]
    return old


def gpuyard_container(api: httpx.Client, image: str, command: list[str]) -> str:
    spec = make_spec(image=image, command=command, workload_id=f"w{uuid.uuid4().hex[:10]}")
    response = api.post("/v1/containers", json=spec.model_dump(mode="json"))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def workload_of(client: docker.DockerClient, container_id: str) -> str:
    return str(client.api.inspect_container(container_id)["Config"]["Labels"]["gpuyard.workload"])


def wait_exited(client: docker.DockerClient, container_id: str) -> None:
    deadline = time.monotonic() + 20
    while client.api.inspect_container(container_id)["State"]["Status"] != "exited":
        assert time.monotonic() < deadline, "container did not exit"
        time.sleep(0.05)


def files_dir(agent: RunningAgent, workload_id: str, content: bytes) -> Path:
    directory = agent.settings.workloads_dir / workload_id / "files"
    directory.mkdir(parents=True)
    (directory / "data.bin").write_bytes(content)
    return directory.parent


def clean(api: httpx.Client, **body: object) -> CleanupReport:
    response = api.post("/v1/cleanup", json=body)
    assert response.status_code == 200, response.text
    return CleanupReport.model_validate(response.json())


def exists(client: docker.DockerClient, kind: str, ident: str) -> bool:
    inspect = {
        "container": client.api.inspect_container,
        "image": client.api.inspect_image,
        "volume": client.api.inspect_volume,
    }[kind]
    try:
        inspect(ident)
    except NotFound:
        return False
    return True


def test_a_dry_run_lists_only_gpuyards_leftovers_and_the_real_run_frees_that_much(
    agent: RunningAgent, api: httpx.Client, dockerd: DockerServer
) -> None:
    client = agent.docker
    own = f"{LABEL_AGENT}={agent.name}"
    # Leftovers of this agent.
    stopped = gpuyard_container(api, dockerd.image, ["sh", "-c", "echo hi > /tmp/x"])
    wait_exited(client, stopped)
    image = dangling_image(client, own)
    volume = client.volumes.create(
        f"gy-vol-{uuid.uuid4().hex[:8]}", labels={LABEL_AGENT: agent.name}
    )
    client.containers.run(
        dockerd.image,
        ["sh", "-c", "seq 1 5000 > /v/numbers"],
        volumes={volume.name: {"bind": "/v"}},
        remove=True,
    )
    orphan = files_dir(agent, "gone-workload", b"x" * 70_000)
    # What stays: not gpuyard's, another agent's, running, in use, or still held.
    running = gpuyard_container(api, dockerd.image, ["sleep", "300"])
    foreign = client.containers.run(dockerd.image, ["true"], detach=True)
    other_agent = client.containers.run(
        dockerd.image, ["true"], detach=True,
        labels={LABEL_AGENT: "someone-else", "gpuyard.workload": "w1"},
    )  # fmt: skip
    wait_exited(client, foreign.id or "")
    wait_exited(client, other_agent.id or "")
    foreign_image = dangling_image(client, "team=ml")
    foreign_volume = client.volumes.create(f"foreign-{uuid.uuid4().hex[:8]}")
    used_volume = client.volumes.create(
        f"gy-used-{uuid.uuid4().hex[:8]}", labels={LABEL_AGENT: agent.name}
    )
    user = client.containers.create(
        dockerd.image, ["true"], volumes={used_volume.name: {"bind": "/v"}}
    )
    running_workload = workload_of(client, running)
    stopped_workload = workload_of(client, stopped)
    held = files_dir(agent, "held-workload", b"y" * 1000)
    try:
        plan = clean(api, dry_run=True, retention_s=0, keep_workloads=["held-workload"])
        planned = {(i.kind, i.id) for i in plan.items}
        assert planned == {
            ("container", stopped),
            ("files", stopped_workload),  # its only container goes: its files too
            ("image", image),
            ("volume", volume.name),
            ("files", "gone-workload"),
        }
        assert all(i.outcome == "planned" for i in plan.items)
        sizes = {i.id: i.size_bytes for i in plan.items}
        assert sizes["gone-workload"] == 70_000
        assert sizes[stopped_workload] > 0  # meta.json
        assert sizes[image] >= 16 * 1024
        assert sizes[volume.name] > 0  # docker's own df figure for the numbers written
        assert plan.total_bytes == sum(sizes.values())
        # A dry run removes nothing.
        assert exists(client, "container", stopped)
        assert exists(client, "image", image)
        assert exists(client, "volume", volume.name)
        assert orphan.exists()
        # A longer retention keeps the freshly stopped container and files.
        kinds = {i.kind for i in clean(api, dry_run=True, retention_s=3600).items}
        assert kinds == {"image", "volume"}

        done = clean(api, dry_run=False, retention_s=0, keep_workloads=["held-workload"])
        assert {(i.kind, i.id) for i in done.items} == planned
        assert all(i.outcome == "removed" for i in done.items), done.items
        assert (done.removed, done.failed, done.skipped) == (5, 0, 0)
        assert done.total_bytes == plan.total_bytes
        assert not exists(client, "container", stopped)
        assert not exists(client, "image", image)
        assert not exists(client, "volume", volume.name)
        assert not orphan.exists()
        # Untouched.
        for kind, ident in (
            ("container", running), ("container", foreign.id), ("container", other_agent.id),
            ("image", foreign_image), ("volume", foreign_volume.name),
            ("volume", used_volume.name), ("image", dockerd.image),
        ):  # fmt: skip
            assert exists(client, kind, ident or ""), (kind, ident)
        assert held.exists()
        assert (agent.settings.workloads_dir / running_workload).exists()
        assert client.api.inspect_container(running)["State"]["Running"]
        # Nothing left: a second run is empty.
        again = clean(api, dry_run=False, retention_s=0, keep_workloads=["held-workload"])
        assert again.items == []
        assert again.total_bytes == 0
    finally:
        for container in (foreign, other_agent, user):
            container.remove(force=True)
        for name in (foreign_volume.name, used_volume.name):
            client.api.remove_volume(name)
        client.api.remove_image(foreign_image)


def test_one_item_that_cannot_be_removed_does_not_stop_the_others(
    agent: RunningAgent, api: httpx.Client, dockerd: DockerServer
) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is needed to make a file undeletable")
    stuck = files_dir(agent, "stuck-workload", b"s" * 100)
    locked = stuck / "files" / "data.bin"
    if subprocess.run(["chattr", "+i", str(locked)], check=False).returncode != 0:
        pytest.skip("this filesystem has no immutable attribute")
    free = files_dir(agent, "free-workload", b"f" * 300)
    stopped = gpuyard_container(api, dockerd.image, ["true"])
    wait_exited(agent.docker, stopped)
    workload_of_removed = workload_of(agent.docker, stopped)
    try:
        report = clean(api, dry_run=False, retention_s=0)
        outcomes = {i.id: i for i in report.items}
        assert outcomes["stuck-workload"].outcome == "failed"
        assert "not permitted" in (outcomes["stuck-workload"].error or "")
        assert outcomes["free-workload"].outcome == "removed"
        assert outcomes[stopped].outcome == "removed"
        assert (report.removed, report.failed) == (3, 1)
        stopped_files = outcomes[workload_of_removed]
        assert report.total_bytes == 300 + outcomes[stopped].size_bytes + stopped_files.size_bytes
        assert not free.exists()
        assert locked.exists()
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=False)


def test_a_container_started_again_after_the_listing_is_skipped(
    agent: RunningAgent, api: httpx.Client, dockerd: DockerServer
) -> None:
    """The check right before a removal sees the container as it is now."""
    stopped = gpuyard_container(api, dockerd.image, ["sleep", "300"])
    agent.docker.api.stop(stopped, timeout=0)
    wait_exited(agent.docker, stopped)
    cleaner = HostCleaner(agent.docker, agent.name, Workspaces(agent.settings.workloads_dir, 1, 1))
    candidates = cleaner._plan(0, frozenset())
    assert [c.id for c in candidates if c.kind == "container"] == [stopped]
    agent.docker.api.start(stopped)
    item = cleaner._remove(next(c for c in candidates if c.kind == "container"), 0, frozenset())
    assert item.outcome == "skipped"
    assert item.error == "container is running"
    assert agent.docker.api.inspect_container(stopped)["State"]["Running"]
    listed = cleaner.clean(CleanupRequest(dry_run=True, retention_s=0)).items
    assert [i for i in listed if i.kind == "container"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"retention_s": -1},
        {"retention_s": 1e12},
        {"keep_workloads": ["../etc"]},
        {"keep_workloads": ["a"] * 10_001},
        {"dry_run": "maybe"},
        {"surprise": 1},
    ],
)
def test_bad_requests_are_refused_naming_the_field(api: httpx.Client, body: object) -> None:
    response = api.post("/v1/cleanup", json=body)
    assert response.status_code == 422, response.text


def test_the_cleanup_needs_the_agent_token(agent: RunningAgent) -> None:
    response = httpx.post(f"{agent.url}/v1/cleanup", json={"dry_run": True})
    assert response.status_code == 401


def build(api: httpx.Client, tag: str, dockerfile: str) -> None:
    """Build ``tag`` through the agent's own build route."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        body = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    response = api.post("/v1/images/build", params={"tag": tag}, content=buffer.getvalue())
    assert response.status_code == 200, response.text
    assert '"kind":"done"' in response.text.replace(" ", ""), response.text[-500:]


def test_an_image_the_agent_built_goes_once_a_rebuild_leaves_it_dangling(
    agent: RunningAgent, api: httpx.Client, dockerd: DockerServer
) -> None:
    tag = f"gy-built/{uuid.uuid4().hex[:8]}:1"
    build(api, tag, f"FROM {dockerd.image}\nRUN echo one > /marker\n")
    first = agent.docker.api.inspect_image(tag)  # type: ignore[no-untyped-call]
    assert first["Config"]["Labels"][LABEL_AGENT] == agent.name
    build(api, tag, f"FROM {dockerd.image}\nRUN echo two > /marker\n")
    try:
        plan = clean(api, dry_run=True, retention_s=3600)
        assert [(i.kind, i.id) for i in plan.items] == [("image", first["Id"])]
        done = clean(api, dry_run=False, retention_s=3600)
        assert [i.outcome for i in done.items] == ["removed"]
        assert done.total_bytes == plan.total_bytes > 0
        assert not exists(agent.docker, "image", first["Id"])
        assert exists(agent.docker, "image", tag)  # the tagged rebuild stays
        assert exists(agent.docker, "image", dockerd.image)  # and its base
    finally:
        agent.docker.api.remove_image(tag)


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    nanos=st.integers(min_value=0, max_value=999),
)
def test_docker_timestamps_parse_to_the_microsecond(moment: datetime, nanos: int) -> None:
    """Docker writes nanoseconds (RFC 3339); the parse keeps every microsecond of them."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos:03d}Z"
    assert docker_time(text) == moment.timestamp()
    assert (
        docker_time(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
        == moment.replace(microsecond=0).timestamp()
    )


def test_docker_timestamps_parse_with_nanoseconds() -> None:
    assert docker_time("2026-12-04T21:14:19.123456789Z") == pytest.approx(
        1796418859.123456, abs=1e-6
    )
    assert docker_time("0001-01-01T00:00:00Z") is None
    assert docker_time("garbage") is None
    assert docker_time("2026-12-04T21:14:19Z") == 1796418859.0
