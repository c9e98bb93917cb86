"""AgentClient: retries with backoff on connection errors and 500/503/504, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gpuyard.runtimes.base import ReplicaSpec
from gpuyard.runtimes.docker import (
    AgentClient,
    AgentError,
    AgentUnreachable,
    DockerRuntime,
    container_spec_for,
    make_handle,
    split_handle,
)

TOKEN = "t" * 24
INFO = {
    "id": "c0ffee",
    "name": "gy-a-w1-0",
    "workload_id": "w1",
    "replica": 0,
    "image": "busybox",
    "state": "running",
    "running": True,
}


def problem(status: int, detail: str = "boom") -> httpx.Response:
    body = {"type": "about:blank", "title": "T", "status": status, "detail": detail, "errors": []}
    return httpx.Response(status, json=body)


def scripted(
    answers: list[httpx.Response | Exception],
) -> tuple[AgentClient, list[httpx.Request], list[float]]:
    """A client whose transport answers in turn; records requests and backoff sleeps."""
    requests: list[httpx.Request] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = AgentClient(
        "http://agent:8090/",
        TOKEN,
        retries=3,
        backoff_s=0.1,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )
    return client, requests, sleeps


CONNECT = httpx.ConnectError("connection refused")


@pytest.mark.parametrize(
    ("answers", "calls"),
    [
        pytest.param([httpx.Response(200, json=INFO)], 1, id="first-try"),
        pytest.param([CONNECT, CONNECT, httpx.Response(200, json=INFO)], 3, id="connect-errors"),
        pytest.param([problem(503), problem(500), httpx.Response(200, json=INFO)], 3, id="5xx"),
        pytest.param([httpx.ReadTimeout("slow"), httpx.Response(200, json=INFO)], 2, id="timeout"),
    ],
)
def test_transient_failures_are_retried(
    answers: list[httpx.Response | Exception], calls: int
) -> None:
    client, requests, sleeps = scripted(answers)

    info = client.get_container("c0ffee")

    assert info.id == "c0ffee"
    assert len(requests) == calls
    assert len(sleeps) == calls - 1
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in requests)


@pytest.mark.parametrize(
    ("status", "calls"),
    [
        pytest.param(404, 1, id="not-found"),
        pytest.param(409, 1, id="conflict"),
        pytest.param(422, 1, id="invalid"),
        pytest.param(502, 1, id="docker-refused"),
        pytest.param(503, 4, id="unavailable-after-retries"),
    ],
)
def test_final_answers_raise_the_agents_problem(status: int, calls: int) -> None:
    client, requests, _ = scripted([problem(status, "docker said no")] * 4)

    with pytest.raises(AgentError) as caught:
        client.get_container("c0ffee")

    assert (caught.value.status, caught.value.detail) == (status, "docker said no")
    assert len(requests) == calls


def test_unreachable_after_every_retry_with_doubling_backoff() -> None:
    client, requests, sleeps = scripted([CONNECT] * 4)

    with pytest.raises(AgentUnreachable, match="agent:8090 unreachable"):
        client.list_containers()

    assert len(requests) == 4
    assert len(sleeps) == 3
    for wait, base in zip(sleeps, (0.1, 0.2, 0.4), strict=True):
        assert base * 0.8 <= wait <= base * 1.2


def test_health_probe_is_not_retried() -> None:
    client, requests, _ = scripted([CONNECT])
    with pytest.raises(AgentUnreachable):
        client.healthz()
    assert len(requests) == 1


def test_backoff_is_capped() -> None:
    client = AgentClient("http://a", TOKEN, backoff_s=1.0, backoff_max_s=2.0)
    assert all(client.backoff(n) <= 2.4 for n in range(1, 12))


def test_exec_target_carries_the_token_in_a_header_not_the_url() -> None:
    client = AgentClient("https://gpu-1.lan:8090", TOKEN)
    target = client.exec_target("c0ffee", ["sh", "-c", "echo a b"])
    assert target.url == (
        "wss://gpu-1.lan:8090/v1/containers/c0ffee/exec?tty=true&cmd=sh&cmd=-c&cmd=echo%20a%20b"
    )
    assert target.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in target.url


def test_paths_are_quoted() -> None:
    client, requests, _ = scripted([httpx.Response(204)])
    client.delete_file("w1", "dir/a b?.txt")
    assert requests[0].url.raw_path == b"/v1/workspaces/w1/files/dir/a%20b%3F.txt"


def replica(**overrides: object) -> ReplicaSpec:
    fields: dict[str, object] = {
        "workload_id": "w1",
        "replica": 1,
        "image": "busybox",
        "command": ["sleep", "9"],
        "env": {"A": "1"},
        "ports": [80, 22],
        "server_name": "gpu-1",
        "cpu_milli": 2000,
        "ram_mib": 1024,
        "storage_mib": 512,
        "gpu_indices": [1, 3],
    }
    fields.update(overrides)
    return ReplicaSpec(**fields)  # type: ignore[arg-type]


def test_replica_spec_becomes_the_agents_container_spec() -> None:
    spec = container_spec_for(
        replica(host_ports={80: 8005}, gpu_uuids=["GPU-b", "GPU-d"], cap_add=["SYS_CHROOT"])
    )
    assert (spec.workload_id, spec.replica, spec.image) == ("w1", 1, "busybox")
    assert (spec.cpu_milli, spec.ram_mib, spec.storage_mib) == (2000, 1024, 512)
    assert [(p.container_port, p.host_port) for p in spec.ports] == [(80, 8005), (22, None)]
    assert (spec.gpu_indices, spec.gpu_uuids) == ([1, 3], ["GPU-b", "GPU-d"])
    assert spec.cap_add == ["SYS_CHROOT"]


def test_a_shares_gpu_memory_reaches_the_container_as_its_limit() -> None:
    spec = container_spec_for(
        replica(
            gpu_indices=[2],
            gpu_memory_mib=20 * 1024,
            env={"A": "1", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=80G"},
        )
    )
    # The reservation's limit replaces the workload's own value; the rest is kept.
    assert spec.env == {
        "A": "1",
        "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=20480M",
        "GPUYARD_GPU_MEMORY_LIMIT_MIB": "20480",
    }
    assert container_spec_for(replica()).env == {"A": "1"}


def test_runtime_routes_each_handle_to_its_servers_agent() -> None:
    seen: list[tuple[str, str, str]] = []

    def agent_for(server: str) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            seen.append((server, request.method, request.url.path))
            if request.method == "POST" and request.url.path == "/v1/containers":
                return httpx.Response(201, json=INFO)
            if request.url.path.endswith("/stop"):
                return problem(404)  # already gone: stopping it is done
            return httpx.Response(200, json=INFO)

        return handler

    clients = {
        name: AgentClient(f"http://{name}", TOKEN, transport=httpx.MockTransport(agent_for(name)))
        for name in ("gpu-1", "gpu-2")
    }
    runtime = DockerRuntime(clients.__getitem__)

    handle = runtime.start(replica(server_name="gpu-2"))
    runtime.stop(handle, 5.0)

    assert handle == "gpu-2/c0ffee"
    assert seen == [
        ("gpu-2", "POST", "/v1/containers"),
        ("gpu-2", "POST", "/v1/containers/c0ffee/stop"),
    ]
    assert runtime.starts_instantly is False


@pytest.mark.parametrize("handle", ["c0ffee", "/c0ffee", "gpu-1/"])
def test_malformed_handles_are_refused(handle: str) -> None:
    with pytest.raises(ValueError, match="handle"):
        split_handle(handle)


def test_handles_round_trip_server_names_with_slashes() -> None:
    assert split_handle(make_handle("rack/a", "c0ffee")) == ("rack/a", "c0ffee")


def test_an_image_removal_whose_answer_was_lost_is_not_retried_into_a_404() -> None:
    client, requests, _ = scripted([httpx.ReadTimeout("answer lost"), problem(404)])
    runtime = DockerRuntime(lambda _server: client)

    with pytest.raises(AgentUnreachable):  # not NotFound: the image may well be gone now
        runtime.remove_image("gpu-1", "busybox:1", force=False)

    assert [(r.method, r.url.path) for r in requests] == [("DELETE", "/v1/images")]
