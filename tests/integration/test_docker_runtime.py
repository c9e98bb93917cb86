"""The docker runtime end to end: a real control plane, two agents as two hosts, a real
dockerd. One module-scoped plane; the tests run in order and build on each other."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.dockerd import DockerServer
from websockets.sync.client import connect

from .cluster import Plane, run_plane, wait_for

pytestmark = pytest.mark.slow

HTTPD = ["sh", "-c", "echo hello-from-container; exec httpd -f -v -p 8080 -h /workspace"]


@pytest.fixture(scope="module")
def plane(dockerd: DockerServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    with run_plane(dockerd, tmp_path_factory.mktemp("plane")) as running:
        yield running


@pytest.fixture(scope="module")
def web(plane: Plane, dockerd: DockerServer) -> dict[str, Any]:
    """An httpd workload, running."""
    body = {
        "name": "web",
        "image": dockerd.image,
        "command": HTTPD,
        "ports": [8080],
        "cpu": 0.5,
        "ram_gb": 0.125,
    }
    response = plane.api.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    workload_id = response.json()["id"]
    return wait_for(
        lambda: (w := plane.workload(workload_id))["status"] == "running" and w,
        what="the workload to run",
    )


def _container(plane: Plane, workload: dict[str, Any]) -> Any:
    host = plane.hosts[workload["server_name"]]
    found = host.docker.containers.list(
        all=True, filters={"label": f"gpuyard.workload={workload['id']}"}, ignore_removed=True
    )
    return next(c for c in found if c.labels["gpuyard.agent"] == host.name)


def test_create_runs_with_the_reservation_limits_labels_and_ports(
    plane: Plane, web: dict[str, Any]
) -> None:
    [port] = web["ports"]
    host = plane.hosts[web["server_name"]]
    low, high = (int(p) for p in host.port_range.split("-"))
    assert port["container_port"] == 8080
    assert low <= port["host_port"] <= high
    attrs = _container(plane, web).attrs
    config = attrs["HostConfig"]
    assert config["NanoCpus"] == 500_000_000
    assert config["Memory"] == config["MemorySwap"] == 128 * 1024 * 1024
    assert config["PidsLimit"] == 4096
    assert config["PortBindings"]["8080/tcp"][0]["HostPort"] == str(port["host_port"])
    assert attrs["Config"]["Labels"]["gpuyard.workload"] == web["id"]


def test_an_uploaded_file_is_served_by_the_container(plane: Plane, web: dict[str, Any]) -> None:
    path = f"/api/v1/workloads/{web['id']}/files/index.html"
    uploaded = plane.api.put(path, content=b"<h1>hello gpuyard</h1>")
    assert uploaded.status_code == 201, uploaded.text
    listed = plane.api.get(f"/api/v1/workloads/{web['id']}/files").json()
    assert [f["name"] for f in listed["data"]] == ["index.html"]
    [port] = web["ports"]
    page = httpx.get(f"http://127.0.0.1:{port['host_port']}/index.html", timeout=10)
    assert page.text == "<h1>hello gpuyard</h1>"
    refused = plane.api.put(f"/api/v1/workloads/{web['id']}/files/../escape", content=b"x")
    assert refused.status_code in (400, 404), refused.text


def test_a_large_upload_streams_through_a_spool_and_arrives_whole(
    plane: Plane, web: dict[str, Any]
) -> None:
    """Past 4 MiB the control plane keeps an upload in a temporary file, not in memory,
    and streams it to the agent with its length: the bytes arrive unchanged."""
    content = bytes(range(256)) * (6 * 4096)  # 6 MiB
    path = f"/api/v1/workloads/{web['id']}/files/blob.bin"
    uploaded = plane.api.put(path, content=content)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == len(content)
    downloaded = plane.api.get(path)
    assert downloaded.status_code == 200
    assert downloaded.content == content
    assert plane.api.delete(path).status_code == 204


def test_logs_follow_through_the_control_plane(plane: Plane, web: dict[str, Any]) -> None:
    seen = b""
    params = {"follow": "true", "tail": "50"}
    with plane.api.stream("GET", f"/api/v1/workloads/{web['id']}/logs", params=params) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            seen += chunk
            if b"hello-from-container" in seen:
                break
    assert b"hello-from-container" in seen


def test_exec_over_the_control_plane_websocket(plane: Plane, web: dict[str, Any]) -> None:
    url = (
        plane.url.replace("http", "ws")
        + f"/api/v1/workloads/{web['id']}/exec?cmd=cat&cmd=/workspace/index.html"
        + f"&token={plane.token}"
    )
    output, exit_frame = b"", None
    with connect(url) as socket:
        for frame in socket:
            if isinstance(frame, bytes):
                output += frame
            else:
                exit_frame = json.loads(frame)
                break
    assert b"hello gpuyard" in output
    assert exit_frame == {"type": "exit", "exit_code": 0}


def test_a_container_removed_from_outside_is_recreated(plane: Plane, web: dict[str, Any]) -> None:
    before = _container(plane, web)
    before.remove(force=True)
    wait_for(
        lambda: _running_container_other_than(plane, web, before.id),
        timeout=10,
        what="the container to be recreated",
    )
    wait_for(
        lambda: any("recreated" in (e["reason"] or "") for e in _events(plane, web["id"])),
        timeout=5,
        what="the recovery event",
    )


def test_a_container_killed_from_outside_is_recreated(plane: Plane, web: dict[str, Any]) -> None:
    before = _container(plane, web)
    before.kill()  # SIGKILL from outside gpuyard: exit 137, not an OOM kill
    wait_for(
        lambda: _running_container_other_than(plane, web, before.id),
        timeout=10,
        what="the killed container to be replaced",
    )
    assert plane.api.get(f"/api/v1/workloads/{web['id']}").json()["status"] == "running"
    wait_for(
        lambda: any(
            "killed from outside (exit 137); recreated" in (e["reason"] or "")
            for e in _events(plane, web["id"])
        ),
        timeout=5,
        what="the recovery event",
    )


def _events(plane: Plane, workload_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = plane.api.get(f"/api/v1/workloads/{workload_id}/events").json()[
        "data"
    ]
    return events


def _running_container_other_than(plane: Plane, web: dict[str, Any], old_id: str) -> bool:
    try:
        container = _container(plane, web)
    except StopIteration:
        return False
    return container.id != old_id and container.status == "running"


def test_a_lost_host_requeues_its_workload_on_the_other(plane: Plane, web: dict[str, Any]) -> None:
    current = plane.workload(web["id"])
    first, other = current["server_name"], ({"host-a", "host-b"} - {current["server_name"]}).pop()
    plane.hosts[first].served.stop()
    offline = wait_for(lambda: _server(plane, first)["status"] == "offline", what="offline")
    assert offline
    moved = wait_for(
        lambda: (
            (w := plane.workload(web["id"]))["status"] == "running"
            and w["server_name"] == other
            and w
        ),
        what="the workload on the other host",
    )
    assert any(e["to_status"] == "lost" for e in _events(plane, web["id"]))
    [port] = moved["ports"]
    low, high = (int(p) for p in plane.hosts[other].port_range.split("-"))
    assert low <= port["host_port"] <= high

    plane.hosts[first].served.start()
    wait_for(lambda: _server(plane, first)["status"] == "online", what="back online")
    # The stale container on the returning host is torn down.
    wait_for(
        lambda: (
            not [
                c
                for c in plane.hosts[first].docker.containers.list(
                    all=True,
                    filters={"label": f"gpuyard.workload={web['id']}"},
                    ignore_removed=True,
                )
                if c.labels["gpuyard.agent"] == first
            ]
        ),
        what="the stale container to be removed",
    )


def _server(plane: Plane, name: str) -> dict[str, Any]:
    servers = plane.api.get("/api/v1/servers").json()["data"]
    found: dict[str, Any] = next(s for s in servers if s["name"] == name)
    return found


def test_stop_tears_the_container_down(plane: Plane, web: dict[str, Any]) -> None:
    stopped = plane.api.post(f"/api/v1/workloads/{web['id']}/stop")
    assert stopped.status_code == 200
    wait_for(
        lambda: (
            not plane.hosts["host-a"].docker.containers.list(
                all=True, filters={"label": f"gpuyard.workload={web['id']}"}, ignore_removed=True
            )
        ),
        what="the containers to be removed",
    )


def test_a_container_that_exits_non_zero_fails_with_its_code(
    plane: Plane, dockerd: DockerServer
) -> None:
    body = {"image": dockerd.image, "command": ["sh", "-c", "exit 3"], "cpu": 0.1, "ram_gb": 0.0625}
    workload_id = plane.api.post("/api/v1/workloads", json=body).json()["id"]
    failed = wait_for(
        lambda: (w := plane.workload(workload_id))["status"] == "failed" and w,
        what="the workload to fail",
    )
    assert "code 3" in failed["reason"]


@pytest.mark.parametrize(
    ("case", "change", "field"),
    [
        ("wrong token", {"agent_token": "not-the-token-of-this-agent"}, "agent_token"),
        ("nobody listens", {"agent_url": "http://127.0.0.1:9"}, "agent_url"),
        ("simulated shape", {"cpu": 4, "ram_gb": 8}, "cpu"),
        ("no token", {"agent_token": None}, "agent_token"),
    ],
)
def test_registering_a_docker_server_refuses_what_it_cannot_use(
    plane: Plane, case: str, change: dict[str, Any], field: str
) -> None:
    host = plane.hosts["host-a"]
    cluster_id = _server(plane, "host-a")["cluster_id"]
    body = {
        "name": f"extra-{field}",
        "cluster_id": cluster_id,
        "agent_url": host.served.url,
        "agent_token": host.token,
    }
    body.update(change)
    response = plane.api.post("/api/v1/servers", json={k: v for k, v in body.items() if v})
    assert response.status_code == 422, case
    assert response.json()["errors"][0]["field"] == field, response.text
    assert all(s["name"] != body["name"] for s in plane.api.get("/api/v1/servers").json()["data"])


def test_a_registered_docker_server_shows_its_agent_but_never_its_token(plane: Plane) -> None:
    server = _server(plane, "host-b")
    assert server["agent_url"] == plane.hosts["host-b"].served.url
    assert server["capacity"]["cpu"] > 0
    assert plane.hosts["host-b"].token not in json.dumps(server)


def test_exec_without_credentials_is_refused(plane: Plane, web: dict[str, Any]) -> None:
    url = plane.url.replace("http", "ws") + f"/api/v1/workloads/{web['id']}/exec"
    with pytest.raises(Exception, match=r"403|1008|rejected"), connect(url) as socket:
        socket.recv(timeout=5)


def _sleeper(plane: Plane, dockerd: DockerServer, name: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "image": dockerd.image, "command": ["sleep", "3600"], "cpu": 0.5,
            "ram_gb": 0.125, **extra}  # fmt: skip
    response = plane.api.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    workload_id = response.json()["id"]
    return wait_for(
        lambda: (w := plane.workload(workload_id))["status"] == "running" and w,
        what=f"{name} to run",
    )


def test_a_resize_recreates_the_container_with_the_new_size(
    plane: Plane, dockerd: DockerServer
) -> None:
    sizer = _sleeper(plane, dockerd, "sizer")
    before = _container(plane, sizer)
    response = plane.api.patch(f"/api/v1/workloads/{sizer['id']}", json={"cpu": 0.7})
    assert response.status_code == 200, response.text
    # The running container cannot take new limits in place: re-queued, then recreated
    # (the scheduler may already have placed it again by the time the PATCH answers).
    requeued = [e for e in _events(plane, sizer["id"]) if e["to_status"] == "pending"]
    assert "recreated with the new size" in requeued[-1]["reason"]
    wait_for(
        lambda: _running_container_other_than(plane, sizer, before.id),
        timeout=20,
        what="the container to be recreated with the new size",
    )
    assert _container(plane, sizer).attrs["HostConfig"]["NanoCpus"] == 700_000_000
    assert plane.api.post(f"/api/v1/workloads/{sizer['id']}/stop").status_code == 200


def test_duration_is_virtual_time_only_for_simulated_servers(
    plane: Plane, dockerd: DockerServer
) -> None:
    timed = _sleeper(plane, dockerd, "timed", duration_s=1)
    time.sleep(3)  # the lifecycle loop ticks every second
    assert plane.workload(timed["id"])["status"] == "running"
    assert plane.api.post(f"/api/v1/workloads/{timed['id']}/stop").status_code == 200
