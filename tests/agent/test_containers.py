"""Container lifecycle against a real dockerd, through the agent's HTTP API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from support.dockerd import DockerServer
from support.local_server import free_port

from gpuyard.agent.host_config import DEFAULT_CAPABILITIES
from gpuyard.agent.models import ContainerInfo

from .builders import make_spec
from .conftest import RunningAgent

MIB = 1024 * 1024


@pytest.fixture
def api(cpu_host: RunningAgent) -> Iterator[httpx.Client]:
    with cpu_host.http() as client:
        yield client


def create(api: httpx.Client, image: str, **overrides: object) -> httpx.Response:
    spec = make_spec(image=image, **overrides)
    return api.post("/v1/containers", json=spec.model_dump(mode="json"))


def wait_http(url: str, timeout: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_create_runs_with_the_reservations_limits_and_publishes_its_port(
    api: httpx.Client, cpu_host: RunningAgent, dockerd: DockerServer
) -> None:
    host_port = free_port()
    response = create(
        api,
        dockerd.image,
        command=["httpd", "-f", "-p", "80", "-h", "/workspace"],
        cpu_milli=1500,
        ram_mib=96,
        pids_limit=64,
        ports=[{"container_port": 80, "host_port": host_port}],
        labels={"team": "ml"},
    )
    assert response.status_code == 201, response.text
    info = ContainerInfo.model_validate(response.json())
    assert (info.state, info.running) == ("running", True)
    assert [(p.container_port, p.host_ip, p.host_port) for p in info.ports] == [
        (80, "127.0.0.1", host_port)
    ]

    attrs = cpu_host.docker.api.inspect_container(info.id)
    config = attrs["HostConfig"]
    assert config["NanoCpus"] == 1_500_000_000
    assert config["Memory"] == config["MemorySwap"] == 96 * MIB
    assert config["PidsLimit"] == 64
    assert config["Privileged"] is False
    assert config["CapDrop"] == ["ALL"]
    assert sorted(config["CapAdd"]) == sorted(DEFAULT_CAPABILITIES)
    assert config["SecurityOpt"] == ["no-new-privileges"]
    assert config["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]
    }
    assert [(m["Type"], m["Destination"]) for m in attrs["Mounts"]] == [("bind", "/workspace")]
    labels = attrs["Config"]["Labels"]
    assert labels["gpuyard.workload"] == info.workload_id
    assert (labels["gpuyard.replica"], labels["gpuyard.agent"], labels["team"]) == (
        "0",
        "cpu-host",
        "ml",
    )
    assert "NVIDIA_VISIBLE_DEVICES=void" in attrs["Config"]["Env"]

    (cpu_host.settings.workspace_dir(info.workload_id) / "index.html").write_text("served")
    answer = wait_http(f"http://127.0.0.1:{host_port}/index.html")
    assert (answer.status_code, answer.text) == (200, "served")


def test_create_is_idempotent_by_workload_and_replica(
    api: httpx.Client, dockerd: DockerServer
) -> None:
    spec = make_spec(image=dockerd.image).model_dump(mode="json")

    first = api.post("/v1/containers", json=spec)
    again = api.post("/v1/containers", json=spec)
    other_replica = api.post("/v1/containers", json={**spec, "replica": 1})

    assert (first.status_code, again.status_code, other_replica.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other_replica.json()["id"] != first.json()["id"]
    listed = api.get("/v1/containers", params={"workload_id": spec["workload_id"]}).json()
    assert sorted(c["replica"] for c in listed["data"]) == [0, 1]


def test_concurrent_creates_of_one_replica_make_one_container(
    cpu_host: RunningAgent, dockerd: DockerServer
) -> None:
    spec = make_spec(image=dockerd.image).model_dump(mode="json")

    def post(_: int) -> httpx.Response:
        with cpu_host.http() as client:
            return client.post("/v1/containers", json=spec)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, range(6)))

    assert sorted(r.status_code for r in responses) == [200] * 5 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    with cpu_host.http() as client:
        listed = client.get("/v1/containers", params={"workload_id": spec["workload_id"]})
    assert listed.json()["count"] == 1


def test_list_reports_state_and_exit_code(api: httpx.Client, dockerd: DockerServer) -> None:
    info = create(api, dockerd.image, command=["sh", "-c", "exit 3"]).json()

    deadline = time.monotonic() + 10
    while (state := api.get(f"/v1/containers/{info['id']}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert (state["state"], state["exit_code"], state["running"]) == ("exited", 3, False)
    (listed,) = api.get("/v1/containers", params={"workload_id": info["workload_id"]}).json()[
        "data"
    ]
    assert (listed["id"], listed["exit_code"]) == (info["id"], 3)


@pytest.mark.slow
def test_stop_waits_the_grace_period_then_kills(api: httpx.Client, dockerd: DockerServer) -> None:
    # PID 1 without a TERM handler ignores SIGTERM: only the SIGKILL after the grace ends it.
    info = create(api, dockerd.image, command=["sleep", "600"]).json()

    started = time.monotonic()
    stopped = api.post(f"/v1/containers/{info['id']}/stop", json={"grace_s": 1})
    took = time.monotonic() - started

    assert stopped.status_code == 200, stopped.text
    assert (stopped.json()["state"], stopped.json()["exit_code"]) == ("exited", 137)
    assert 0.9 <= took < 10


def test_remove_then_not_found(api: httpx.Client, dockerd: DockerServer) -> None:
    info = create(api, dockerd.image).json()

    assert api.delete(f"/v1/containers/{info['id']}").status_code == 204
    gone = api.get(f"/v1/containers/{info['id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert api.delete(f"/v1/containers/{info['id']}").status_code == 404


def test_each_agent_sees_only_its_own_containers(
    cpu_host: RunningAgent, gpu_host: RunningAgent, dockerd: DockerServer
) -> None:
    spec = make_spec(image=dockerd.image).model_dump(mode="json")
    with cpu_host.http() as on_cpu, gpu_host.http() as on_gpu:
        mine = on_cpu.post("/v1/containers", json=spec).json()
        theirs = on_gpu.post("/v1/containers", json=spec)  # same workload, the other host

        assert theirs.status_code == 201
        assert theirs.json()["id"] != mine["id"]
        assert on_gpu.get(f"/v1/containers/{mine['id']}").status_code == 404
        assert on_gpu.post(f"/v1/containers/{mine['id']}/stop", json={}).status_code == 404
        ids = {c["id"] for c in on_gpu.get("/v1/containers").json()["data"]}
        assert theirs.json()["id"] in ids
        assert mine["id"] not in ids


def test_gpu_request_without_nvidia_runtime_is_a_clear_problem(
    gpu_host: RunningAgent, dockerd: DockerServer
) -> None:
    """The inventory has GPUs 0-3 (fake), Docker here has no NVIDIA runtime: 409, not a 500."""
    spec = make_spec(image=dockerd.image, gpu_indices=[1, 3])
    with gpu_host.http() as api:
        response = api.post("/v1/containers", json=spec.model_dump(mode="json"))
        problem = response.json()

        assert response.status_code == 409
        assert problem["type"].endswith("/gpu-runtime-unavailable")
        assert "NVIDIA" in problem["detail"]
        assert problem["errors"][0]["field"] == "gpu_uuids"
        # The half-created container was removed, so a retry starts clean.
        listed = api.get("/v1/containers", params={"workload_id": spec.workload_id})
        assert listed.json()["count"] == 0


def test_a_host_port_in_use_is_a_conflict_on_ports(
    api: httpx.Client, dockerd: DockerServer
) -> None:
    ports = [{"container_port": 80, "host_port": free_port()}]
    assert create(api, dockerd.image, ports=ports).status_code == 201

    clash = create(api, dockerd.image, ports=ports)

    assert clash.status_code == 409, clash.text
    assert clash.json()["errors"] == [{"field": "ports", "message": "host port already in use"}]


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        pytest.param({"image": "no-such-image:1"}, 422, "image", id="unknown-image"),
        pytest.param({"gpu_indices": [0]}, 422, "gpu_indices", id="gpu-on-a-host-without"),
        pytest.param({"cpu_milli": -5}, 422, "cpu_milli", id="invalid-spec"),
    ],
)
def test_refused_specs(
    api: httpx.Client, dockerd: DockerServer, overrides: dict[str, object], status: int, field: str
) -> None:
    body = make_spec(image=dockerd.image).model_dump(mode="json") | overrides
    response = api.post("/v1/containers", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


def test_stats_report_cumulative_cpu_time_that_grows_only_when_busy(
    api: httpx.Client, dockerd: DockerServer
) -> None:
    """GET /v1/containers/{id}/stats (idle culling): one-shot readings of the container's
    CPU time; a spinning container's grows by about its CPU limit, a sleeping one's not;
    a stopped one reports none; an unknown one is a 404 problem."""
    busy = create(api, dockerd.image, command=["sh", "-c", "while :; do :; done"]).json()
    idle = create(api, dockerd.image, command=["sleep", "600"]).json()
    first = {c: api.get(f"/v1/containers/{c}/stats").json() for c in (busy["id"], idle["id"])}
    time.sleep(2)
    second = {c: api.get(f"/v1/containers/{c}/stats").json() for c in (busy["id"], idle["id"])}
    for container_id in first:
        assert second[container_id]["running"] is True
        assert second[container_id]["cpu_seconds"] >= first[container_id]["cpu_seconds"] >= 0
    busy_used = second[busy["id"]]["cpu_seconds"] - first[busy["id"]]["cpu_seconds"]
    idle_used = second[idle["id"]]["cpu_seconds"] - first[idle["id"]]["cpu_seconds"]
    assert busy_used > 0.2  # make_spec's default limit is at least a fraction of a core
    assert idle_used < 0.05

    api.post(f"/v1/containers/{idle['id']}/stop", json={"grace_s": 0})
    stopped = api.get(f"/v1/containers/{idle['id']}/stats").json()
    assert (stopped["running"], stopped["cpu_seconds"]) == (False, None)
    unknown = api.get("/v1/containers/no-such-container/stats")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
