"""A throwaway Redis server for tests, from the machine's redis-server, on 127.0.0.1.

No persistence (no RDB snapshots, no AOF) and no unix socket; the temp dir is its working dir.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .local_server import HOST, LocalServer, ServerError, ServerUnavailable, log_tail

START_TIMEOUT_S = 20.0


class RedisUnavailable(ServerUnavailable):
    """No redis-server binary."""


def find_redis_server() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable(
            "redis-server not found on PATH; install the Debian package 'redis-server'"
        )
    return Path(found)


def ping(port: int) -> bool:
    """Whether a Redis server answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(LocalServer):
    """redis-server in a temp dir; `url` is redis://127.0.0.1:PORT/0."""

    kind = "redis"

    def __init__(self) -> None:
        super().__init__()
        self._binary: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """URL of one numbered database (0-15) on this server."""
        return f"redis://{HOST}:{self.port}/{db}"

    @property
    def _log(self) -> Path:
        return self.directory / "redis.log"

    def check_available(self) -> None:
        self._binary = find_redis_server()

    def _launch(self, port: int) -> None:
        assert self._binary is not None
        command = [
            str(self._binary),
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
        ]  # fmt: skip
        with self._log.open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._watch_pid(process.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                _terminate(process)
                log_text = log_tail(self._log)
                raise ServerError(
                    f"redis-server did not answer PING on {HOST}:{port}\n"
                    f"--- {self._log} ---\n{log_text}",
                    port_in_use="Address already in use" in log_text,
                )
            time.sleep(0.02)
        self._process = process

    def halt(self) -> None:
        """Stop the server process only, keeping its port and dir (an outage): then
        :meth:`resume`. Nothing persists, so it comes back empty."""
        if self._process is not None:
            _terminate(self._process)
            self._process = None

    def freeze(self) -> None:
        """Stop the server answering without closing anything (SIGSTOP): a Redis that hangs.
        Connections stay open and the kernel still accepts new ones; then :meth:`thaw`."""
        assert self._process is not None, "not running"
        os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server answer again (SIGCONT); harmless if it is not frozen."""
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGCONT)

    def resume(self) -> None:
        """Start the server again on the same port after :meth:`halt`."""
        assert self._process is None, "running already"
        self._launch(self.port)

    def _shutdown(self) -> None:
        if self._process is not None:
            _terminate(self._process)
            self._process = None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)  # a frozen server would not act on SIGTERM
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
