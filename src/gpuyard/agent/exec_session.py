"""An interactive ``docker exec`` bridged to a WebSocket.

Protocol (the control plane relays it to browsers unchanged):

- client -> agent: **binary** frames are stdin; **text** frames are JSON control messages:
  ``{"type": "stdin", "data": "ls\\n"}``, ``{"type": "resize", "rows": 24, "cols": 80}``,
  ``{"type": "eof"}`` (close stdin; useful without a TTY).
- agent -> client: **binary** frames are output (stdout and stderr); one final **text** frame
  ``{"type": "exit", "exit_code": N}`` when the process ends (or ``{"type": "error",
  "detail": ...}``), then the socket closes with 1000 (1011 after an error).

The docker side is the raw socket of the exec's hijacked HTTP connection, read and written with
the event loop's socket functions. Docker never ends an exec whose client went away (the
process would linger, and pile up with every closed browser tab), so when the client leaves
first the agent hangs up the exec's process tree itself (SIGHUP, then SIGKILL after a second),
by the host PID Docker reports; this needs the agent in the host's PID namespace, as it is when
run as a host service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

import psutil
from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from gpuyard.agent.containers import ContainerManager
from gpuyard.domain.errors import GpuyardError
from gpuyard.log import get_logger

log = get_logger(__name__)
READ_SIZE = 64 * 1024
EXIT_POLL_S = 0.05
EXIT_WAIT_S = 5.0
HANGUP_GRACE_S = 1.0
_HEADER = struct.Struct(">BxxxI")


class Demuxer:
    """Splits Docker's multiplexed stream (8-byte header per frame, used without a TTY)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Payloads of every frame completed by ``data`` (stdout and stderr alike)."""
        self._buffer += data
        payloads = []
        while len(self._buffer) >= _HEADER.size:
            _stream, size = _HEADER.unpack_from(self._buffer)
            if len(self._buffer) < _HEADER.size + size:
                break
            payloads.append(self._buffer[_HEADER.size : _HEADER.size + size])
            self._buffer = self._buffer[_HEADER.size + size :]
        return payloads


class ExecSession:
    """One exec process and its hijacked socket."""

    def __init__(self, manager: ContainerManager, container_id: str) -> None:
        self._api = manager.client.api
        self._manager = manager
        self._container_id = container_id
        self.exec_id = ""
        self.sock: socket.socket | None = None
        self._keep: object = None

    def open(self, cmd: Sequence[str], tty: bool, rows: int | None, cols: int | None) -> None:
        """Create and start the exec (blocking: run it in a thread)."""
        info = self._manager.get(self._container_id)
        env = {"TERM": "xterm-256color"} if tty else None
        created = self._api.exec_create(
            info.id, list(cmd), stdin=True, stdout=True, stderr=True, tty=tty, environment=env
        )
        self.exec_id = created["Id"]
        wrapped: Any = self._api.exec_start(self.exec_id, tty=tty, socket=True)
        raw = getattr(wrapped, "_sock", wrapped)
        self._keep = wrapped  # the SDK's wrapper holds the HTTP response; keep it alive
        if not isinstance(raw, socket.socket):
            raise TypeError(f"unexpected exec socket {type(raw).__name__}")
        raw.setblocking(False)
        self.sock = raw
        if tty and rows and cols:
            self.resize(rows, cols)

    def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(Exception):  # resizing a finished exec is harmless
            self._api.exec_resize(self.exec_id, height=rows, width=cols)

    def exit_code(self) -> int | None:
        """The exit code once Docker has seen the process end (polls briefly)."""
        deadline = time.monotonic() + EXIT_WAIT_S
        while True:
            state = self._api.exec_inspect(self.exec_id)
            if not state.get("Running") or time.monotonic() > deadline:
                code = state.get("ExitCode")
                return None if code is None else int(code)
            time.sleep(EXIT_POLL_S)

    def hang_up(self) -> None:
        """End the exec's process tree if it still runs (the client left before it ended)."""
        try:
            state = self._api.exec_inspect(self.exec_id)
            if not state.get("Running") or not state.get("Pid"):
                return
            root = psutil.Process(int(state["Pid"]))
            processes = [root, *root.children(recursive=True)]
        except Exception:  # already gone, or Docker/psutil cannot tell: nothing to end
            return
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGHUP)
        _gone, alive = psutil.wait_procs(processes, timeout=HANGUP_GRACE_S)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        log.info("exec hung up", exec_id=self.exec_id[:12], processes=len(processes))

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


async def serve_exec(
    websocket: WebSocket,
    manager: ContainerManager,
    container_id: str,
    cmd: Sequence[str],
    tty: bool,
    rows: int | None = None,
    cols: int | None = None,
) -> None:
    """Run ``cmd`` in the container and bridge it to an accepted WebSocket until either ends."""
    session = ExecSession(manager, container_id)
    try:
        await run_in_threadpool(session.open, cmd, tty, rows, cols)
    except GpuyardError as exc:
        await _finish(
            websocket, {"type": "error", "status": exc.status, "detail": exc.detail}, 1011
        )
        return
    except Exception as exc:  # docker refused the exec: tell the client, do not crash
        await _finish(websocket, {"type": "error", "status": 502, "detail": str(exc)}, 1011)
        return
    assert session.sock is not None
    output = asyncio.create_task(_pump_output(websocket, session.sock, tty))
    inputs = asyncio.create_task(_pump_input(websocket, session))
    try:
        done, _pending = await asyncio.wait({output, inputs}, return_when=asyncio.FIRST_COMPLETED)
        if output in done:
            inputs.cancel()
            output.result()
            code = await run_in_threadpool(session.exit_code)
            await _finish(websocket, {"type": "exit", "exit_code": code}, 1000)
        else:
            output.cancel()
            session.close()
            await run_in_threadpool(session.hang_up)
    finally:
        for task in (output, inputs):
            task.cancel()
        session.close()


async def _pump_output(websocket: WebSocket, sock: socket.socket, tty: bool) -> None:
    loop = asyncio.get_running_loop()
    demuxer = None if tty else Demuxer()
    while True:
        try:
            data = await loop.sock_recv(sock, READ_SIZE)
        except OSError:
            return
        if not data:
            return
        for payload in [data] if demuxer is None else demuxer.feed(data):
            if payload:
                await websocket.send_bytes(payload)


async def _pump_input(websocket: WebSocket, session: ExecSession) -> None:
    loop = asyncio.get_running_loop()
    assert session.sock is not None
    sock = session.sock
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await loop.sock_sendall(sock, message["bytes"])
            continue
        control = _control(message.get("text") or "")
        kind = control.get("type")
        if kind == "stdin":
            await loop.sock_sendall(sock, str(control.get("data", "")).encode())
        elif kind == "resize":
            rows, cols = int(control.get("rows", 0)), int(control.get("cols", 0))
            if rows > 0 and cols > 0:
                await run_in_threadpool(session.resize, rows, cols)
        elif kind == "eof":
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)


def _control(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _finish(websocket: WebSocket, message: dict[str, Any], code: int) -> None:
    with contextlib.suppress(Exception):  # the client may already be gone
        await websocket.send_text(json.dumps(message))
        await websocket.close(code=code)
