"""RedisServer really starts on 127.0.0.1 without persistence and stops cleanly."""

import socket
from pathlib import Path

import pytest

from . import redis
from .local_server import port_is_open, start_or_skip
from .redis import RedisServer, RedisUnavailable, find_redis_server


def command(port: int, *words: str) -> bytes:
    """Send one command in RESP and return the raw reply (enough for tiny replies)."""
    payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload.encode())
        return sock.recv(4096)


@pytest.mark.integration
@pytest.mark.redis
def test_server_answers_then_stops_cleanly() -> None:
    with start_or_skip(RedisServer()) as server:
        port, directory = server.port, server.directory
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert server.url_for(3) == f"redis://127.0.0.1:{port}/3"
        assert redis.ping(port)
        assert command(port, "SET", "k", "v") == b"+OK\r\n"
        assert command(port, "GET", "k") == b"$1\r\nv\r\n"
        assert command(port, "CONFIG", "GET", "save").endswith(b"$0\r\n\r\n")
        assert command(port, "CONFIG", "GET", "unixsocket").endswith(b"$0\r\n\r\n")

    assert not server.running
    assert not port_is_open(port)
    assert not directory.exists()


def test_session_fixture(redis_server: RedisServer, request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("integration") is not None
    assert redis.ping(redis_server.port)


def test_missing_binary_raises_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisUnavailable, match="install the Debian package 'redis-server'"):
        find_redis_server()
