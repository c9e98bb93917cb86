"""`gpuyard exec`: a command or a shell in a running workload, over the control plane's
exec WebSocket (docs/agent.md, Exec protocol: binary frames are stdin and output, text
frames JSON control messages, the last one the exit code)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich.console import Console
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from gpuyard.cli.api_client import ApiClient, ApiError

err = Console(stderr=True)
READ_CHUNK = 4096


def exec_(
    ref: Annotated[str, typer.Argument(help="workload id, id prefix or name")],
    command: Annotated[
        list[str] | None, typer.Argument(help="command and arguments (default: a shell)")
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="send this terminal's stdin")
    ] = False,
    tty: Annotated[
        bool, typer.Option("--tty", "-t", help="a terminal (raw keys, resizes)")
    ] = False,
) -> None:
    """Run a command (or `-it`, a shell) in a workload."""
    if tty and not sys.stdin.isatty():
        raise typer.BadParameter("stdin is not a terminal: drop -t", param_hint="-t")
    client = ApiClient()
    workload = client.resolve_workload(ref)
    path = f"/api/v1/workloads/{workload['id']}/exec"
    raise typer.Exit(run_session(client, path, command or [], interactive, tty))


def run_session(
    client: ApiClient, path: str, command: list[str], interactive: bool, tty: bool
) -> int:
    """Open an exec-protocol WebSocket at ``path`` (a workload's exec, a server's terminal)
    and pump this terminal through it; the remote command's exit code."""
    query = urlencode([("tty", "true" if tty else "false"), *(("cmd", c) for c in command)])
    url = "ws" + client.url.removeprefix("http") + f"{path}?{query}"
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    try:
        with connect(url, additional_headers=headers, max_size=None, open_timeout=30) as socket:
            return _session(socket, interactive, tty)
    except InvalidStatus as exc:
        raise ApiError(exc.response.status_code, "the exec session was refused") from exc
    except (OSError, InvalidHandshake) as exc:
        raise ApiError(0, f"cannot open the exec session at {client.url}: {exc}") from exc


def _session(socket: ClientConnection, interactive: bool, tty: bool) -> int:
    """Pump stdin up and output down until the exit frame; its exit code."""
    with _raw_terminal(tty):
        if tty:
            _send_size(socket)
            with contextlib.suppress(ValueError):  # not the main thread: no resize signal
                signal.signal(signal.SIGWINCH, lambda *_: _send_size(socket))
        if interactive or tty:
            threading.Thread(target=_pump_stdin, args=(socket, tty), daemon=True).start()
        else:
            # The server may already have refused the session (an error frame, then a
            # close): the frame is still read below.
            with contextlib.suppress(ConnectionClosed):
                socket.send(json.dumps({"type": "eof"}))
        out = sys.stdout.buffer
        try:
            for message in socket:
                if isinstance(message, bytes):
                    out.write(message)
                    out.flush()
                    continue
                control: dict[str, Any] = json.loads(message)
                if control.get("type") == "exit":
                    return int(control.get("exit_code") or 0)
                if control.get("type") == "error":
                    detail = str(control.get("detail", "refused"))
                    raise ApiError(int(control.get("status") or 502), detail)
        except ConnectionClosed:
            pass
    return 0


def _pump_stdin(socket: ClientConnection, tty: bool) -> None:
    """Stdin up as binary frames: a raw terminal's keys as typed, else the stream until its
    end, then ``eof`` (so a `cat` in the workload ends too)."""
    try:
        if tty:
            fd = sys.stdin.fileno()
            while chunk := os.read(fd, READ_CHUNK):
                socket.send(chunk)
            return
        stream: Any = sys.stdin.buffer  # a BufferedReader (or a test runner's BytesIO)
        while chunk := stream.read1(READ_CHUNK):
            socket.send(chunk)
    except (OSError, ValueError, ConnectionClosed):
        pass  # stdin closed or unreadable, or the session ended: nothing more to send
    if not tty:
        with contextlib.suppress(ConnectionClosed):
            socket.send(json.dumps({"type": "eof"}))


def _send_size(socket: ClientConnection) -> None:
    size = os.get_terminal_size(sys.stdin.fileno())
    with contextlib.suppress(ConnectionClosed):
        socket.send(json.dumps({"type": "resize", "rows": size.lines, "cols": size.columns}))


@contextlib.contextmanager
def _raw_terminal(tty: bool) -> Iterator[None]:
    """This terminal in raw mode (every key to the workload, Ctrl-C included), restored
    however the session ends."""
    if not tty:
        yield
        return
    import termios
    import tty as tty_modes

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty_modes.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
