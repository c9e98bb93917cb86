"""Shared plumbing for test servers started from the machine's own binaries.

A `LocalServer` lives in a private temp dir and listens on 127.0.0.1 only, on a free port. A
guard process (exit_guard.py) tears it down if this interpreter ends without stopping it
(os._exit, SIGKILL, a crash), so no test run leaves a server behind.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self, TypeVar

import pytest

HOST = "127.0.0.1"
START_ATTEMPTS = 3
_GUARD_SCRIPT = Path(__file__).with_name("exit_guard.py")
ServerT = TypeVar("ServerT", bound="LocalServer")


class ServerUnavailable(Exception):
    """The binaries a server needs are not installed: tests skip locally and fail in CI."""


class ServerError(RuntimeError):
    """The binaries are there but a server command failed (a real failure, never a skip)."""

    def __init__(self, message: str, *, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a server log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def terminate_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a server by its PID, then SIGKILL it if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def spawn_until_ready(
    command: list[str],
    log: Path,
    ready: Callable[[], bool],
    *,
    failure: str,
    watch_pid: Callable[[int], None],
    timeout_s: float,
    poll_s: float = 0.05,
    append_log: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log`` and wait until ``ready()``. When it exits
    or the time runs out: stop it and raise ServerError (``failure``, then the log's tail;
    ``port_in_use`` when the log says the address is taken, so the caller retries)."""
    with log.open("ab" if append_log else "wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    watch_pid(process.pid)
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            terminate_process(process)
            text = log_tail(log)
            raise ServerError(
                f"{failure}\n--- {log} ---\n{text}",
                port_in_use="address already in use" in text.lower(),
            )
        time.sleep(poll_s)
    return process


class ExitGuard:
    """A detached watcher that cleans up after us unless disarmed before we exit."""

    def __init__(self, *, commands: list[list[str]], remove: Path) -> None:
        spec = json.dumps({"commands": commands, "remove": str(remove)})
        self._proc = subprocess.Popen(
            [sys.executable, str(_GUARD_SCRIPT), spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C aimed at pytest must not kill the guard first
            cwd="/",
        )

    def watch_pid(self, pid: int) -> None:
        self._send(f"kill {pid}")

    def disarm(self) -> None:
        """We stopped the server ourselves: the guard exits without doing anything."""
        self._send("disarm")
        self.release()

    def release(self) -> None:
        """Close our end; an armed guard cleans up now. Waits for the guard to finish."""
        self._stdin.close()
        self._proc.wait(timeout=90)

    @property
    def _stdin(self) -> IO[bytes]:
        assert self._proc.stdin is not None
        return self._proc.stdin

    def _send(self, line: str) -> None:
        self._stdin.write(f"{line}\n".encode())
        self._stdin.flush()


class LocalServer:
    """Start/stop skeleton: locate binaries, temp dir, free port (retried), guard, teardown.

    Subclasses implement `check_available`, `_launch` and `_shutdown`, and may extend the other
    hooks; `start()` and `stop()` are idempotent, and the object is a context manager.
    """

    kind: ClassVar[str]

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._port: int | None = None
        self._guard: ExitGuard | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.kind} server is not running")
        return self._port

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise RuntimeError(f"{self.kind} server is not running")
        return self._dir

    @property
    def running(self) -> bool:
        return self._port is not None

    def start(self) -> Self:
        if self._dir is not None:
            return self
        self.check_available()
        self._dir = Path(tempfile.mkdtemp(prefix=f"gpuyard-{self.kind}-"))
        try:
            self._guard = ExitGuard(commands=self._emergency_commands(), remove=self._dir)
            self._prepare(self._dir)
            self._port = self._launch_on_free_port()
            self._after_start()
        except BaseException:
            self._discard(stopped=False)
            raise
        return self

    def stop(self) -> None:
        if self._dir is None:
            return
        stopped = False
        try:
            if self._port is not None:
                self._shutdown()
            stopped = True
        finally:
            self._discard(stopped=stopped)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch_on_free_port(self) -> int:
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            try:
                self._launch(port)
            except ServerError as error:
                # Another process may take the port between free_port() and our bind.
                if error.port_in_use and attempt < START_ATTEMPTS:
                    continue
                raise
            return port
        raise AssertionError("unreachable")

    def _discard(self, *, stopped: bool) -> None:
        if self._guard is not None:
            if stopped:
                self._guard.disarm()
            else:
                self._guard.release()  # still armed: it kills whatever is left, then returns
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self._port = None
        self._guard = None

    def _watch_pid(self, pid: int) -> None:
        assert self._guard is not None
        self._guard.watch_pid(pid)

    def check_available(self) -> None:
        """Find the binaries; raise ServerUnavailable (saying what to install) if missing."""
        raise NotImplementedError

    def _prepare(self, directory: Path) -> None:
        """Set up the temp dir once, before the first launch (default: nothing)."""

    def _emergency_commands(self) -> list[list[str]]:
        """Commands the guard runs if we die with the server up (default: none)."""
        return []

    def _launch(self, port: int) -> None:
        """Start the server on `port` and wait until it serves; raise ServerError."""
        raise NotImplementedError

    def _after_start(self) -> None:
        """Set-up that needs the running server and `port` (default: nothing)."""

    def _shutdown(self) -> None:
        """Stop the server started by `_launch`."""
        raise NotImplementedError


def start_or_skip(server: ServerT) -> ServerT:
    """Start `server`, or skip the current test (with the reason) if its binaries are missing.

    The skip's __cause__ is the ServerUnavailable: that is how the root conftest knows to fail
    it in CI, however the test reached the server (fixture argument, getfixturevalue, directly).
    """
    try:
        return server.start()
    except ServerUnavailable as missing:
        raise pytest.skip.Exception(str(missing)) from missing
