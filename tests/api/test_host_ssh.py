"""Host SSH (issue 19) against a real OpenSSH server on 127.0.0.1 (tests/support/sshd.py):
settings with the key encrypted at rest, a terminal through the control plane's WebSocket,
the host key pinned at first use, a changed key refused until an admin un-pins it,
hostile input refused with nothing written, and plain users kept out."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from factories.app import add_user, mint_token, sqlite_only
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect
from support.sshd import SshServer, keygen

from gpuyard.runtimes.host_ssh import generate_key, public_key_facts
from gpuyard.services.context import ServiceContext
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.host_ssh_tables import ServerSshRow


@pytest.fixture
def key(sshd: SshServer) -> tuple[str, str]:
    """A new key pair whose public half may log in to the test sshd: (private, fingerprint)."""
    private, facts = generate_key()
    sshd.authorize(facts.public_key)
    return private, facts.fingerprint


def _server_id(client: TestClient) -> str:
    server: str = client.get("/api/v1/servers").json()["data"][0]["id"]
    return server


def _configure(client: TestClient, sshd: SshServer, private_key: str) -> dict[str, Any]:
    body = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.user,
        "private_key": private_key,
    }
    response = client.put(f"/api/v1/servers/{_server_id(client)}/ssh", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _terminal(
    client: TestClient, server_id: str, command: list[str] | None = None, stdin: list[str] = ()
) -> tuple[bytes, dict[str, Any]]:
    """Open the terminal (no TTY when a command is given), send ``stdin``; the output and
    the final control frame (exit or error)."""
    query = "tty=true" if command is None else "tty=false&" + "&".join(f"cmd={c}" for c in command)
    output = b""
    with client.websocket_connect(f"/api/v1/servers/{server_id}/terminal?{query}") as socket:
        for line in stdin:
            socket.send_bytes(line.encode())
        if command is not None:
            socket.send_text(json.dumps({"type": "eof"}))
        while True:
            message = socket.receive()
            if message.get("bytes") is not None:
                output += message["bytes"]
            elif message.get("text") is not None:
                return output, json.loads(message["text"])
            else:
                raise AssertionError(f"the socket closed without an exit frame: {message}")


def _audit_actions(ctx: ServiceContext) -> list[str]:
    with ctx.db.read() as session:
        return list(session.scalars(select(AuditEventRow.action).order_by(AuditEventRow.id)))


def test_a_command_runs_on_the_host_and_its_key_is_pinned(
    client: TestClient, ctx: ServiceContext, sshd: SshServer, key: tuple[str, str]
) -> None:
    private, fingerprint = key
    settings = _configure(client, sshd, private)
    assert settings["key_fingerprint"] == fingerprint
    assert settings["host_key"] is None  # nothing pinned before the first connection
    assert "private_key" not in settings
    assert "BEGIN" not in json.dumps(settings)
    with ctx.db.read() as session:
        stored = session.scalars(select(ServerSshRow.private_key_enc)).one()
    assert "PRIVATE KEY" not in stored
    assert stored.startswith("gpyenc:v1:")
    assert ctx.secret_box.decrypt(stored).startswith("-----BEGIN OPENSSH PRIVATE KEY-----")

    server_id = settings["server_id"]
    output, control = _terminal(
        client, server_id, ["sh", "-c", "echo hello-from-$(id -un); exit 7"]
    )
    assert output.decode() == f"hello-from-{sshd.user}\n"
    assert control == {"type": "exit", "exit_code": 7}

    pinned = client.get(f"/api/v1/servers/{server_id}/ssh").json()["host_key"]
    assert pinned is not None
    assert pinned["fingerprint"] == public_key_facts(sshd.host_public_key)[1]
    assert pinned["public_key"] == " ".join(sshd.host_public_key.split()[:2])
    actions = _audit_actions(ctx)
    assert actions[-3:] == ["server.ssh_set", "server.terminal", "server.ssh_pin"]


@sqlite_only
def test_an_interactive_shell_in_a_terminal(
    client: TestClient, sshd: SshServer, key: tuple[str, str]
) -> None:
    settings = _configure(client, sshd, key[0])
    output, control = _terminal(
        client, settings["server_id"], stdin=["echo $((6*7)) $TERM\n", "exit 3\n"]
    )
    assert "42 xterm-256color" in output.decode(errors="replace")
    assert control == {"type": "exit", "exit_code": 3}


def test_a_changed_host_key_is_refused_until_an_admin_unpins_it(
    client: TestClient, ctx: ServiceContext, sshd: SshServer, key: tuple[str, str]
) -> None:
    settings = _configure(client, sshd, key[0])
    server_id = settings["server_id"]
    _output, control = _terminal(client, server_id, ["true"])
    assert control["exit_code"] == 0
    old = public_key_facts(sshd.host_public_key)[1]
    new = public_key_facts(sshd.change_host_key())[1]
    assert old != new

    output, control = _terminal(client, server_id, ["touch", "/tmp/gpuyard-must-not-run"])
    assert output == b""
    assert control["type"] == "error"
    assert control["status"] == 409
    assert old in control["detail"]
    assert new in control["detail"]
    assert "changed" in control["detail"]
    assert not Path("/tmp/gpuyard-must-not-run").exists()
    assert client.get(f"/api/v1/servers/{server_id}/ssh").json()["host_key"]["fingerprint"] == old

    unpinned = client.delete(f"/api/v1/servers/{server_id}/ssh/host-key")
    assert unpinned.status_code == 200, unpinned.text
    assert unpinned.json()["host_key"] is None
    again = client.delete(f"/api/v1/servers/{server_id}/ssh/host-key")
    assert again.status_code == 409  # nothing pinned any more

    _output, control = _terminal(client, server_id, ["true"])
    assert control == {"type": "exit", "exit_code": 0}
    repinned = client.get(f"/api/v1/servers/{server_id}/ssh").json()["host_key"]
    assert repinned["fingerprint"] == new
    assert "server.ssh_unpin" in _audit_actions(ctx)


@sqlite_only
def test_a_key_the_host_does_not_accept_is_a_clear_502(
    client: TestClient, sshd: SshServer, tmp_path: Path
) -> None:
    private, _facts = generate_key()  # never authorized
    settings = _configure(client, sshd, private)
    _output, control = _terminal(client, settings["server_id"], ["true"])
    assert control["type"] == "error"
    assert control["status"] == 502
    assert "refused the login" in control["detail"]


@sqlite_only
def test_a_key_in_pem_with_a_passphrase_is_kept_without_it(
    client: TestClient, sshd: SshServer, tmp_path: Path
) -> None:
    path = keygen(tmp_path / "rsa", "rsa")
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", "open sesame", "-m", "PEM", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    sshd.authorize((tmp_path / "rsa.pub").read_text())
    server_id = _server_id(client)
    body = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.user,
        "private_key": path.read_text(),
    }
    missing = client.put(f"/api/v1/servers/{server_id}/ssh", json=body)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["passphrase"]
    wrong = client.put(f"/api/v1/servers/{server_id}/ssh", json={**body, "passphrase": "nope"})
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json()["errors"]] == ["passphrase"]
    right = client.put(
        f"/api/v1/servers/{server_id}/ssh", json={**body, "passphrase": "open sesame"}
    )
    assert right.status_code == 200, right.text
    assert right.json()["key_type"] == "ssh-rsa"
    _output, control = _terminal(client, server_id, ["true"])
    assert control == {"type": "exit", "exit_code": 0}


_TRUNCATED_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
BAD_SETTINGS = [
    pytest.param({"private_key": "not a key"}, "private_key", id="key text that is no key"),
    pytest.param(
        {"private_key": _TRUNCATED_KEY},
        "private_key",
        id="a truncated key",
    ),
    pytest.param({"private_key": "x" * 20_000}, "private_key", id="a huge key"),
    pytest.param({"username": "root; rm -rf /"}, "username", id="a user name with a command"),
    pytest.param({"username": "-oProxyCommand=x"}, "username", id="a user name like an option"),
    pytest.param({"host": "-oProxyCommand=x"}, "host", id="a host like an option"),
    pytest.param({"host": "a b"}, "host", id="a host with a space"),
    pytest.param({"host": "user@host"}, "host", id="a host with a user part"),
    pytest.param({"port": 0}, "port", id="port zero"),
    pytest.param({"port": 70_000}, "port", id="port above 65535"),
    pytest.param({"port": "22"}, "port", id="port as text"),
    pytest.param({"passphrase": "p" * 5000}, "passphrase", id="a huge passphrase"),
]


@sqlite_only
@pytest.mark.parametrize(("change", "field"), BAD_SETTINGS)
def test_hostile_settings_are_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, ctx: ServiceContext, change: dict[str, Any], field: str
) -> None:
    private, _facts = generate_key()
    body = {"host": "127.0.0.1", "port": 22, "username": "gpuyard", "private_key": private}
    server_id = _server_id(client)
    response = client.put(f"/api/v1/servers/{server_id}/ssh", json={**body, **change})
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert "BEGIN" not in response.text  # the key is never echoed
    assert client.get(f"/api/v1/servers/{server_id}/ssh").status_code == 404
    assert "server.ssh_set" not in _audit_actions(ctx)


@sqlite_only
def test_missing_things_are_404_and_a_simulated_server_needs_a_host(client: TestClient) -> None:
    private, _facts = generate_key()
    body = {"username": "gpuyard", "private_key": private}
    assert client.put("/api/v1/servers/nope/ssh", json=body).status_code == 404
    server_id = _server_id(client)
    no_host = client.put(f"/api/v1/servers/{server_id}/ssh", json=body)
    assert no_host.status_code == 422
    assert [e["field"] for e in no_host.json()["errors"]] == ["host"]
    assert client.get(f"/api/v1/servers/{server_id}/ssh").status_code == 404
    assert client.delete(f"/api/v1/servers/{server_id}/ssh").status_code == 404
    _output, control = _terminal(client, server_id, ["true"])
    assert control["type"] == "error"
    assert control["status"] == 404
    ok = client.put(f"/api/v1/servers/{server_id}/ssh", json={**body, "host": "gpu-1.example"})
    assert ok.status_code == 200
    assert ok.json()["port"] == 22
    assert client.delete(f"/api/v1/servers/{server_id}/ssh").status_code == 204
    assert client.get(f"/api/v1/servers/{server_id}/ssh").status_code == 404


@sqlite_only
def test_a_plain_user_may_neither_set_nor_open_a_terminal(
    client: TestClient, ctx: ServiceContext, sshd: SshServer, key: tuple[str, str]
) -> None:
    settings = _configure(client, sshd, key[0])
    server_id = settings["server_id"]
    user = TestClient(client.app)
    user_id = add_user(ctx, "dev@example.com", "developer-pass-1")
    user.headers["Authorization"] = f"Bearer {mint_token(ctx, user_id)}"
    body = {"host": "127.0.0.1", "username": "x", "private_key": key[0]}
    assert user.put(f"/api/v1/servers/{server_id}/ssh", json=body).status_code == 403
    assert user.get(f"/api/v1/servers/{server_id}/ssh").status_code == 403
    assert user.delete(f"/api/v1/servers/{server_id}/ssh").status_code == 403
    assert user.delete(f"/api/v1/servers/{server_id}/ssh/host-key").status_code == 403
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        user.websocket_connect(f"/api/v1/servers/{server_id}/terminal?cmd=true") as socket,
    ):
        socket.receive()
    assert refused.value.code == 1008
    assert "server.terminal" not in _audit_actions(ctx)


@sqlite_only
@pytest.mark.parametrize(
    "query",
    [
        pytest.param("cmd=" + "x" * 5000, id="an argument over 4096 characters"),
        pytest.param("&".join(["cmd=x"] * 300), id="over 256 arguments"),
    ],
)
def test_a_hostile_terminal_command_is_refused_before_any_connection(
    client: TestClient, ctx: ServiceContext, sshd: SshServer, key: tuple[str, str], query: str
) -> None:
    settings = _configure(client, sshd, key[0])
    path = f"/api/v1/servers/{settings['server_id']}/terminal?tty=false&{query}"
    with client.websocket_connect(path) as socket:
        control = json.loads(socket.receive_text())
    assert control["type"] == "error"
    assert control["status"] == 422
    assert "server.terminal" not in _audit_actions(ctx)
    assert client.get(f"/api/v1/servers/{settings['server_id']}/ssh").json()["host_key"] is None


@sqlite_only
def test_a_nul_in_the_command_closes_the_socket_at_the_handshake(
    client: TestClient, ctx: ServiceContext
) -> None:
    server_id = _server_id(client)
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/api/v1/servers/{server_id}/terminal?cmd=a%00b") as socket,
    ):
        socket.receive_text()
    assert closed.value.code == 1008
    assert "cmd" in closed.value.reason
    assert "server.terminal" not in _audit_actions(ctx)


def test_two_first_connections_pin_one_key(client: TestClient, ctx: ServiceContext) -> None:
    """The pin is a compare-and-set on "nothing pinned": the second pin sees the first."""
    from gpuyard.store.host_ssh import pin_host_key

    private, _facts = generate_key()
    body = {"host": "gpu-1.example", "username": "gpuyard", "private_key": private}
    server_id = _server_id(client)
    assert client.put(f"/api/v1/servers/{server_id}/ssh", json=body).status_code == 200
    first, second = generate_key()[1].public_key, generate_key()[1].public_key
    with ctx.db.write() as session:
        assert pin_host_key(session, server_id, first, "SHA256:a", ctx.now()) == (first, True)
    with ctx.db.write() as session:
        assert pin_host_key(session, server_id, second, "SHA256:b", ctx.now()) == (first, False)
        assert pin_host_key(session, "no-such-server", first, "SHA256:a", ctx.now()) == (
            None,
            False,
        )
    pinned = client.get(f"/api/v1/servers/{server_id}/ssh").json()["host_key"]
    assert pinned["public_key"] == first
    assert pinned["fingerprint"] == "SHA256:a"
    # A new host or port drops the pin; the same ones keep it.
    again = client.put(f"/api/v1/servers/{server_id}/ssh", json=body).json()
    assert again["host_key"]["public_key"] == first
    moved = client.put(f"/api/v1/servers/{server_id}/ssh", json={**body, "port": 2222}).json()
    assert moved["host_key"] is None


def test_the_settings_go_with_their_server(client: TestClient, ctx: ServiceContext) -> None:
    private, _facts = generate_key()
    body = {"host": "gpu-9.example", "username": "gpuyard", "private_key": private}
    server_id = _server_id(client)
    assert client.put(f"/api/v1/servers/{server_id}/ssh", json=body).status_code == 200
    assert client.delete(f"/api/v1/servers/{server_id}").status_code == 204
    with ctx.db.read() as session:
        assert session.scalars(select(ServerSshRow)).all() == []
