"""A kubernetes workload's exec WebSocket through gpuyard's API, relayed to the pod's
``exec`` subresource over the fake API server (tests/kube/, a test double: not
Kubernetes), which runs the command for real in a subprocess: output and exit codes
arrive in the agent's exec protocol, a resize reaches the API server as channel 4, v4 is
spoken where v5 is not, a pod that does not run is a clear 409, and a user who may not
see the workload gets no session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from factories.app import add_user, admin_caller, mint_token
from factories.live import served
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE
from websockets.sync.client import ClientConnection, connect

from gpuyard.api.app import create_app
from gpuyard.domain.kube_names import pod_name
from gpuyard.services.context import ServiceContext


@pytest.fixture
def base_url(ctx: ServiceContext) -> Iterator[str]:
    with served(create_app(ctx)) as url:
        yield "ws" + url.removeprefix("http")


def open_exec(
    ctx: ServiceContext, base_url: str, workload_id: str, cmd: list[str], token: str = ""
) -> ClientConnection:
    token = token or mint_token(ctx, admin_caller(ctx).user_id)
    query = "".join(f"&cmd={part}" for part in cmd)
    return connect(f"{base_url}/api/v1/workloads/{workload_id}/exec?token={token}{query}")


def session(socket: ClientConnection, *sent: bytes | str) -> tuple[bytes, dict[str, Any]]:
    """Send ``sent``, then read the output until the final text frame."""
    for frame in sent:
        socket.send(frame)
    output = b""
    while True:
        frame = socket.recv(timeout=10)
        if isinstance(frame, bytes):
            output += frame
        else:
            return output, dict(json.loads(frame))


def test_a_command_runs_in_the_pod_and_its_output_and_exit_arrive(
    ctx: ServiceContext, base_url: str, running: str, fake_apiserver: FakeApiServer
) -> None:
    with open_exec(ctx, base_url, running, ["echo", "hi"]) as socket:
        output, final = session(socket)

    assert final == {"type": "exit", "exit_code": 0}
    assert output == b"hi\n"
    assert final == {"type": "exit", "exit_code": 0}
    [record] = fake_apiserver.execs
    assert (record.namespace, record.pod) == (NAMESPACE, pod_name(running, 0))
    assert record.command == ("echo", "hi")
    assert (record.subprotocol, record.tty) == ("v5.channel.k8s.io", True)


def test_a_non_zero_exit_code_arrives(ctx: ServiceContext, base_url: str, running: str) -> None:
    with open_exec(ctx, base_url, running, ["sh", "-c", "exit%203"]) as socket:
        _output, final = session(socket)

    assert final == {"type": "exit", "exit_code": 3}


def test_a_shell_takes_stdin_and_a_resize_reaches_the_api_server(
    ctx: ServiceContext, base_url: str, running: str, fake_apiserver: FakeApiServer
) -> None:
    resize = json.dumps({"type": "resize", "rows": 40, "cols": 132})
    typed = json.dumps({"type": "stdin", "data": "exit 4\n"})

    with open_exec(ctx, base_url, running, []) as socket:
        output, final = session(socket, resize, b"echo from-the-shell\n", typed)

    assert b"from-the-shell\n" in output
    assert final == {"type": "exit", "exit_code": 4}
    [record] = fake_apiserver.execs
    assert record.command == ("/bin/sh",)  # no command: a shell
    assert record.resizes == [{"Width": 132, "Height": 40}]


def test_end_of_input_closes_stdin_on_v5(ctx: ServiceContext, base_url: str, running: str) -> None:
    with open_exec(ctx, base_url, running, ["cat"]) as socket:
        output, final = session(socket, b"ping\n", json.dumps({"type": "eof"}))

    assert output == b"ping\n"
    assert final == {"type": "exit", "exit_code": 0}  # cat saw the end of its input


def test_a_cluster_speaking_only_v4_is_spoken_to_in_v4(
    ctx: ServiceContext, base_url: str, running: str, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.exec_subprotocols = ["v4.channel.k8s.io"]

    with open_exec(ctx, base_url, running, ["sh", "-c", "echo%20v4;%20exit%202"]) as socket:
        output, final = session(socket)

    assert output == b"v4\n"
    assert final == {"type": "exit", "exit_code": 2}
    assert fake_apiserver.execs[0].subprotocol == "v4.channel.k8s.io"


def test_a_program_the_container_lacks_is_an_error_frame(
    ctx: ServiceContext, base_url: str, running: str
) -> None:
    with open_exec(ctx, base_url, running, ["no-such-program-here"]) as socket:
        _output, final = session(socket)

    assert final["type"] == "error"
    assert "executable file not found" in final["detail"]


def test_a_pod_that_does_not_run_is_a_409(
    ctx: ServiceContext, base_url: str, running: str, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.kubelet_terminate(NAMESPACE, pod_name(running, 0), "Error", exit_code=1)

    with open_exec(ctx, base_url, running, ["echo", "hi"]) as socket:
        _output, final = session(socket)

    assert final["type"] == "error"
    assert final["status"] == 409
    assert "is not running" in final["detail"]
    assert fake_apiserver.execs == []  # never opened


def test_a_user_who_may_not_see_the_workload_gets_no_session(
    ctx: ServiceContext, base_url: str, running: str, fake_apiserver: FakeApiServer
) -> None:
    stranger = add_user(ctx, "stranger@example.com", "a-long-enough-password")
    token = mint_token(ctx, stranger)

    with open_exec(ctx, base_url, running, ["echo", "hi"], token=token) as socket:
        _output, final = session(socket)

    assert final["type"] == "error"
    assert final["status"] in (403, 404)
    assert fake_apiserver.execs == []
