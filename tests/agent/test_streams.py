"""Logs, exec and files against a real dockerd, through the agent (and its client)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from support.dockerd import DockerServer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from gpuyard.agent.models import ContainerInfo
from gpuyard.runtimes.docker import AgentClient, AgentError

from .builders import make_spec
from .conftest import RunningAgent


@pytest.fixture
def client(cpu_host: RunningAgent) -> Iterator[AgentClient]:
    with cpu_host.client() as agent_client:
        yield agent_client


@pytest.fixture
def shell(client: AgentClient, dockerd: DockerServer) -> ContainerInfo:
    """A running container that idles (for exec and files)."""
    return client.create_container(make_spec(image=dockerd.image, command=["sleep", "600"]))


def test_logs_tail_and_follow_stream_lines_as_they_are_written(
    client: AgentClient, dockerd: DockerServer
) -> None:
    script = (
        "echo first; echo second >&2; i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done"
    )
    info = client.create_container(make_spec(image=dockerd.image, command=["sh", "-c", script]))

    arrivals: list[tuple[float, str]] = []
    with client.logs(info.id, follow=True) as chunks:
        buffer = ""
        for chunk in chunks:
            buffer += chunk.decode()
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                arrivals.append((time.monotonic(), line))
            if sum(line.startswith("tick-") for _, line in arrivals) >= 4:
                break

    lines = [line for _, line in arrivals]
    assert {"first", "second"} <= set(lines)  # stdout and stderr (their order is not kept)
    assert [line for line in lines if line.startswith("tick-")][:4] == [
        "tick-0",
        "tick-1",
        "tick-2",
        "tick-3",
    ]
    # Followed, not collected at the end: the ticks arrived spread over time.
    tick_times = [at for at, line in arrivals if line.startswith("tick-")]
    assert tick_times[-1] - tick_times[0] > 0.4
    with client.logs(info.id, tail=1) as chunks:
        assert b"".join(chunks).decode().count("\n") == 1


def test_logs_of_an_unknown_container_is_a_404(client: AgentClient) -> None:
    with pytest.raises(AgentError) as caught, client.logs("no-such-container"):
        pass
    assert caught.value.status == 404


def open_exec(agent: RunningAgent, container_id: str, *args: str) -> ClientConnection:
    target = agent.client().exec_target(container_id, list(args) or None)
    return connect(target.url, additional_headers=target.headers, open_timeout=10)


def read_until_exit(ws: ClientConnection, timeout: float = 10.0) -> tuple[str, dict[str, object]]:
    output = b""
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        if isinstance(message, bytes):
            output += message
            continue
        control = json.loads(message)
        if control["type"] in {"exit", "error"}:
            return output.decode(errors="replace"), control


def test_exec_session_runs_a_command_and_returns_its_output(
    cpu_host: RunningAgent, shell: ContainerInfo
) -> None:
    with open_exec(cpu_host, shell.id) as ws:
        ws.send(json.dumps({"type": "resize", "rows": 30, "cols": 100}))
        ws.send(b"echo answer=$((6*7)); stty size; id -u\n")
        ws.send(json.dumps({"type": "stdin", "data": "exit 5\n"}))
        output, control = read_until_exit(ws)

    assert "answer=42" in output
    assert "30 100" in output  # the TTY took the resize
    assert control == {"type": "exit", "exit_code": 5}


def test_closing_the_socket_ends_the_exec_processes(
    cpu_host: RunningAgent, shell: ContainerInfo
) -> None:
    """Docker keeps an exec running after its client left; the agent hangs it up."""
    with open_exec(cpu_host, shell.id) as ws:
        ws.send(b"sleep 1000\n")
        deadline = time.monotonic() + 5
        while not _commands(cpu_host, shell.id) & {"sleep 1000"}:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    deadline = time.monotonic() + 5
    while _commands(cpu_host, shell.id) != {"sleep 600"}:
        assert time.monotonic() < deadline, _commands(cpu_host, shell.id)
        time.sleep(0.1)


def _commands(agent: RunningAgent, container_id: str) -> set[str]:
    top = agent.docker.api.top(container_id)
    column = top["Titles"].index("CMD")
    return {process[column] for process in top["Processes"]}


def test_exec_of_a_command_without_tty(cpu_host: RunningAgent, shell: ContainerInfo) -> None:
    target = cpu_host.client().exec_target(shell.id, ["sh", "-c", "cat; echo done"], tty=False)
    with connect(target.url, additional_headers=target.headers) as ws:
        ws.send(b"from stdin\n")
        ws.send(json.dumps({"type": "eof"}))
        output, control = read_until_exit(ws)

    assert output == "from stdin\ndone\n"  # demultiplexed: no 8-byte frame headers
    assert control == {"type": "exit", "exit_code": 0}


def test_exec_in_an_unknown_container_reports_an_error(cpu_host: RunningAgent) -> None:
    with open_exec(cpu_host, "no-such-container") as ws:
        _output, control = read_until_exit(ws)
    assert (control["type"], control["status"]) == ("error", 404)


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token"], ids=["missing", "wrong"])
def test_exec_without_the_token_is_refused_with_401(
    cpu_host: RunningAgent, shell: ContainerInfo, token: str | None
) -> None:
    target = cpu_host.client().exec_target(shell.id)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with pytest.raises(InvalidStatus) as caught:
        connect(target.url, additional_headers=headers, open_timeout=5)
    assert caught.value.response.status_code == 401


def test_the_kernel_enforces_the_limits_inside_the_container(
    cpu_host: RunningAgent, client: AgentClient, dockerd: DockerServer
) -> None:
    """Not only recorded by Docker: the container's own view of its cgroup and credentials."""
    info = client.create_container(
        make_spec(image=dockerd.image, command=["sleep", "600"], ram_mib=80, pids_limit=50)
    )
    script = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; "
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
    )
    with open_exec(cpu_host, info.id, "sh", "-c", script) as ws:
        output, control = read_until_exit(ws)

    lines = [line.strip() for line in output.splitlines()]
    assert lines[0] == str(80 * 1024 * 1024)
    assert lines[1] == "50"
    # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE = bits 0,1,3-7,10
    assert lines[2].split() == ["CapEff:", "00000000000004fb"]
    assert lines[3].split() == ["NoNewPrivs:", "1"]
    assert control["exit_code"] == 0


def test_uploaded_file_is_visible_inside_the_container(
    cpu_host: RunningAgent, client: AgentClient, shell: ContainerInfo
) -> None:
    client.upload_file(shell.workload_id, "data/hello.txt", b"hello from the control plane\n")

    with open_exec(cpu_host, shell.id, "cat", "/workspace/data/hello.txt") as ws:
        output, control = read_until_exit(ws)

    assert output.replace("\r\n", "\n") == "hello from the control plane\n"
    assert control["exit_code"] == 0
    listing = client.list_files(shell.workload_id, "data")
    assert [(e.name, e.size) for e in listing.data] == [("hello.txt", 29)]
    assert client.download_file(shell.workload_id, "data/hello.txt").startswith(b"hello")


def test_a_link_made_inside_the_container_is_refused_outside(
    cpu_host: RunningAgent, client: AgentClient, shell: ContainerInfo
) -> None:
    """The container points /workspace/leak at /etc/passwd: on the host that would be the
    host's /etc/passwd. The agent refuses to read or write through it."""
    with open_exec(cpu_host, shell.id, "sh", "-c", "ln -s /etc/passwd /workspace/leak") as ws:
        assert read_until_exit(ws)[1]["exit_code"] == 0

    for call in (
        lambda: client.download_file(shell.workload_id, "leak"),
        lambda: client.upload_file(shell.workload_id, "leak/x", b"x"),
    ):
        with pytest.raises(AgentError) as caught:
            call()
        assert caught.value.status == 400
        assert "symbolic link" in caught.value.detail
    entries = {e.name: e.type for e in client.list_files(shell.workload_id).data}
    assert entries["leak"] == "symlink"


@pytest.mark.parametrize(
    "raw_path",
    [
        pytest.param("..%2F..%2F..%2Fetc%2Fpasswd", id="encoded-dotdot"),
        pytest.param("a/%2E%2E/%2E%2E/%2E%2E/etc/passwd", id="encoded-dots"),
        pytest.param("%2Fetc%2Fpasswd", id="absolute"),
    ],
)
def test_traversal_over_http_is_refused(
    cpu_host: RunningAgent, shell: ContainerInfo, raw_path: str
) -> None:
    with cpu_host.http() as api:
        url = f"/v1/workspaces/{shell.workload_id}/files/{raw_path}"
        for method in ("GET", "PUT"):
            response = api.request(method, url, content=b"x" if method == "PUT" else None)
            assert response.status_code == 400, (method, response.text)
            assert response.json()["type"].endswith("/path-refused")


def test_oversize_upload_is_refused_with_413(
    cpu_host: RunningAgent, client: AgentClient, shell: ContainerInfo
) -> None:
    too_big = b"x" * (1024 * 1024 + 1)  # cpu-host allows 1 MiB per upload
    with pytest.raises(AgentError) as caught:
        client.upload_file(shell.workload_id, "big.bin", too_big)
    assert caught.value.status == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: caught while streaming
        for _ in range(17):
            yield b"x" * 65536

    with cpu_host.http() as api:
        response = api.put(f"/v1/workspaces/{shell.workload_id}/files/big2.bin", content=chunked())
    assert response.status_code == 413
    assert "big.bin" not in {e.name for e in client.list_files(shell.workload_id).data}


def test_workspace_is_deleted_only_without_containers(
    client: AgentClient, shell: ContainerInfo
) -> None:
    client.upload_file(shell.workload_id, "f.txt", b"1")
    with pytest.raises(AgentError) as caught:
        client.delete_workspace(shell.workload_id)
    assert caught.value.status == 409
    client.remove_container(shell.id)
    client.delete_workspace(shell.workload_id)
    with pytest.raises(AgentError) as missing:
        client.list_files(shell.workload_id)
    assert missing.value.status == 404
