"""Sizes and slow bodies (issue 13, class 4), against a real `gpuyard serve` over raw
sockets: the attacks are about what the HTTP server does with bytes on the wire, which an
in-process client cannot show.

- a declared Content-Length over the limit is refused before the body is read;
- a chunked body that keeps coming is cut off at the limit, and the server's memory does
  not grow with what the attacker sends;
- a body that stops arriving is abandoned with a 408 once the idle timeout passes, and the
  server goes on answering others meanwhile; one that drips just inside the idle timeout
  is abandoned at the whole-body deadline.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from factories.processes import serve_processes

IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.5
MAX_BODY_KIB = 64


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = Path(tmp_path_factory.mktemp("limits")) / "data"
    data_dir.mkdir()
    env = {
        "GPUYARD_MAX_BODY_KIB": str(MAX_BODY_KIB),
        "GPUYARD_BODY_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "GPUYARD_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "GPUYARD_ADMIN_PASSWORD": "limits-admin-pass",
        "GPUYARD_RUN_LOOPS": "false",
    }
    with serve_processes(1, data_dir, None, env) as urls:
        yield urls[0]


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _server_pid(url: str) -> int:
    port = _address(url)[1]
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            return conn.pid
    raise AssertionError(f"no process listens on {port}")


def test_a_declared_length_over_the_limit_is_refused_before_the_body(server: str) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {1024 * 1024 * 1024}\r\n\r\n".encode()
        )
        answer = _read_answer(sock)  # no body sent: the answer comes anyway
    assert _status_of(answer) == 413
    assert b"application/problem+json" in answer
    body = answer.split(b"\r\n\r\n", 1)[1]
    if body:
        assert "GPUYARD_MAX_BODY_KIB" in body.decode(errors="replace")


def test_a_chunked_body_is_cut_off_at_the_limit_and_memory_stays_bounded(server: str) -> None:
    process = psutil.Process(_server_pid(server))
    rss_before = process.memory_info().rss
    chunk = b"x" * 65536
    sent = 0
    answer = b""
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/workloads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 64 * 1024 * 1024:  # 64 MiB offered, a thousand times the limit
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        answer = _read_answer(sock)
    assert answer, "the server answered nothing"
    # Unauthenticated, so a 401 may come first; either way the body was not taken whole.
    assert _status_of(answer) in (401, 413), answer[:200]
    assert process.memory_info().rss - rss_before < 32 * 1024 * 1024


def test_a_body_that_stops_arriving_is_abandoned_while_others_are_served(server: str) -> None:
    with socket.create_connection(_address(server), timeout=10) as slow:
        slow.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"email":'
        )
        started = time.monotonic()
        # Meanwhile, another client is served at once.
        assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200
        answer = _read_answer(slow)
        waited = time.monotonic() - started
    assert _status_of(answer) == 408
    assert IDLE_TIMEOUT_S * 0.8 <= waited < IDLE_TIMEOUT_S + 5


def test_a_body_that_drips_just_inside_the_idle_timeout_still_ends(server: str) -> None:
    """The slowloris variant: a byte every half idle timeout never trips the idle check;
    the whole-body deadline ends it."""
    with socket.create_connection(_address(server), timeout=10) as slow:
        slow.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        slow.settimeout(IDLE_TIMEOUT_S / 2)
        answer = b""
        while not answer and time.monotonic() - started < BODY_TIMEOUT_S + 5:
            try:
                slow.sendall(b" ")
                answer = slow.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        waited = time.monotonic() - started
    assert answer, "the drip was never cut off"
    assert _status_of(answer) == 408
    assert BODY_TIMEOUT_S * 0.8 <= waited < BODY_TIMEOUT_S + 3


def test_a_body_within_the_limit_still_works(server: str) -> None:
    login = httpx.post(
        f"{server}/api/v1/auth/login",
        json={"email": "admin@gpuyard.local", "password": "limits-admin-pass"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    env = {f"K{i}": "v" * 100 for i in range(100)}  # ~12 KiB, under 64 KiB
    created = httpx.post(
        f"{server}/api/v1/workloads",
        content=json.dumps({"image": "busybox", "env": env}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    too_big = httpx.post(
        f"{server}/api/v1/workloads",
        content=json.dumps({"image": "busybox", "command": ["x" * 8000] * 10}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert too_big.status_code == 413
    assert "64 KiB" in too_big.json()["detail"]
