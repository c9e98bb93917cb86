"""A pod's streams through its cluster's API server: logs (``/log``, read by the official
client) and exec (the ``exec`` subresource over WebSocket).

Exec speaks Kubernetes' channel subprotocol: ``v5.channel.k8s.io``, else
``v4.channel.k8s.io``. Every binary message starts with its channel (0 stdin, 1 stdout,
2 stderr, 3 the final ``Status``, 4 terminal resize as ``{"Width", "Height"}``; v5 adds
255, closing a channel: ``[255, 0]`` is stdin's end of file). ``ChannelStream`` translates
it into the agent's exec protocol (docs/agent.md), which gpuyard's relay speaks to the
user: binary frames are stdin and output, text frames JSON control messages, and the
``Status`` becomes the final ``{"type": "exit", "exit_code": N}`` (or an error). The
WebSocket is the ``websockets`` library's (as gpuyard's relay uses), authenticated with
what the cluster's ``kubernetes.client.Configuration`` holds (bearer token, client
certificate, the cluster's CA).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from kubernetes import client as k8s
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from gpuyard.domain.errors import UpstreamProblem
from gpuyard.domain.replica_access import ExecStream, ExecTarget
from gpuyard.runtimes.kubernetes.pods import CONTAINER

V5_CHANNEL = "v5.channel.k8s.io"
V4_CHANNEL = "v4.channel.k8s.io"
#: Offered in this order: the API server picks the first it speaks.
SUBPROTOCOLS = (V5_CHANNEL, V4_CHANNEL)
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
#: A shell when the user names no command (as the docker agent's exec).
DEFAULT_COMMAND = ("/bin/sh",)
#: The largest message taken from the API server (its output chunks are far smaller).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Seconds to open the WebSocket (TCP, TLS, upgrade).
OPEN_TIMEOUT_S = 10.0
#: Terminal sizes a resize may ask for, rows and columns alike.
MAX_TERMINAL_CELLS = 10_000


# -- logs ------------------------------------------------------------------------------------


def chunks(response: Any) -> Iterator[bytes]:
    """The body of a ``_preload_content=False`` answer, as it arrives."""
    stream: Callable[..., Iterator[bytes]] | None = getattr(response, "stream", None)
    if stream is None:  # an answer read whole
        data = getattr(response, "data", b"")
        yield data if isinstance(data, bytes) else str(data).encode()
        return
    yield from stream(4096)


def close_response(response: Any) -> None:
    for name in ("release_conn", "close"):
        method = getattr(response, name, None)
        if callable(method):
            method()


# -- exec ------------------------------------------------------------------------------------


def exec_url(host: str, namespace: str, name: str, command: Sequence[str], tty: bool = True) -> str:
    """The WebSocket URL of the pod's ``exec`` subresource in the replica's container.
    With a TTY the kubelet merges stderr into stdout, so stderr is asked only without."""
    query = [
        ("container", CONTAINER),
        ("stdin", "true"),
        ("stdout", "true"),
        ("stderr", "false" if tty else "true"),
        ("tty", "true" if tty else "false"),
        *(("command", part) for part in command),
    ]
    base = "ws" + host.removeprefix("http")  # http -> ws, https -> wss
    return f"{base.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{name}/exec?{urlencode(query)}"


def tls_context(configuration: k8s.Configuration) -> ssl.SSLContext | None:
    """The TLS the official client would use for the cluster (its CA, the user's client
    certificate, verification as the kubeconfig says); None for plain HTTP."""
    cfg: Any = configuration  # untyped in the client
    if not str(cfg.host).startswith("https"):
        return None
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if getattr(cfg, "ca_cert_data", None):
        context.load_verify_locations(cadata=cfg.ca_cert_data)
    if not cfg.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cfg.assert_hostname is False:
        context.check_hostname = False
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return context


def exec_target(
    configuration: k8s.Configuration,
    namespace: str,
    name: str,
    command: Sequence[str],
    tty: bool = True,
) -> ExecTarget:
    """How gpuyard's relay opens an exec session in the pod: the URL, and an opener that
    connects with the cluster's credentials and translates the channels."""
    cfg: Any = configuration
    url = exec_url(str(cfg.host), namespace, name, command or DEFAULT_COMMAND, tty)
    # The headers the official client itself authenticates with (a bearer token, refreshed
    # by its hook where the kubeconfig has one); client certificates go in the TLS.
    headers = {
        str(setting["key"]): str(setting["value"])
        for setting in cfg.auth_settings().values()
        if setting.get("in") == "header" and setting.get("value")
    }
    tls = tls_context(configuration)
    options: dict[str, Any] = {"ssl": tls} if tls is not None else {}
    if tls is not None and cfg.tls_server_name:
        options["server_hostname"] = cfg.tls_server_name
    if cfg.proxy:
        options["proxy"] = cfg.proxy
    where = f"pod {namespace}/{name}"

    def opener() -> AbstractAsyncContextManager[ExecStream]:
        return open_channels(url, headers, options, where)

    return ExecTarget(url=url, headers={}, opener=opener)


@asynccontextmanager
async def open_channels(
    url: str, headers: dict[str, str], options: dict[str, Any], where: str
) -> AsyncIterator[ExecStream]:
    """Open the exec WebSocket; an API server's refusal is an ``UpstreamProblem`` saying
    what it answered (409 when the container is not running, 502 otherwise)."""
    try:
        connection = await connect(
            url,
            additional_headers=headers,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            max_size=MAX_MESSAGE_BYTES,
            open_timeout=OPEN_TIMEOUT_S,
            proxy=options.pop("proxy", None),
            **options,
        )
    except InvalidStatus as exc:
        raise refusal(exc, where) from exc
    async with connection:
        yield ChannelStream(connection)


def refusal(exc: InvalidStatus, where: str) -> UpstreamProblem:
    """The API server's answer to the upgrade, with its ``Status`` message."""
    code = exc.response.status_code
    message = exc.response.reason_phrase
    try:
        status = json.loads(exc.response.body or b"{}")
    except ValueError:
        status = {}
    if isinstance(status, dict) and status.get("message"):
        message = str(status["message"])
    detail = f"the cluster's API server refused exec in {where}: {code} {message}"[:1000]
    # 400: the container is not running (yet, or any more); anything else is the
    # cluster's trouble (its credentials, its RBAC), not the caller's.
    return UpstreamProblem(409 if code == 400 else 502, detail)


class ChannelStream:
    """An exec WebSocket of the channel subprotocol, seen through the agent's exec protocol."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self.v5 = connection.subprotocol == V5_CHANNEL

    async def send(self, frame: bytes | str) -> None:
        """A user's frame: binary is stdin; text a JSON control message (stdin, resize,
        eof; others are ignored, as the agent ignores them)."""
        for message in translate(frame, v5=self.v5):
            await self._connection.send(message)

    def __aiter__(self) -> AsyncIterator[bytes | str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[bytes | str]:
        """Output as binary frames, then the exit (or error) as the last text frame."""
        try:
            async for message in self._connection:
                if not isinstance(message, bytes) or not message:
                    continue  # the channel protocols send binary only
                channel, data = message[0], message[1:]
                if channel in (STDOUT, STDERR):
                    if data:  # the server opens each channel with an empty message
                        yield data
                elif channel == STATUS:
                    yield json.dumps(final_message(data))
                    return
        except ConnectionClosed:
            return


def translate(frame: bytes | str, *, v5: bool) -> list[bytes]:
    """The channel messages for one of the user's frames (agent protocol): binary is
    stdin; text a JSON control message (stdin, resize, eof); anything else, nothing."""
    if isinstance(frame, bytes):
        return [bytes([STDIN]) + frame] if frame else []
    try:
        control = json.loads(frame)
    except (ValueError, RecursionError):
        return []
    if not isinstance(control, dict):
        return []
    kind = control.get("type")
    if kind == "stdin" and isinstance(control.get("data"), str):
        return [bytes([STDIN]) + control["data"].encode(errors="replace")]
    if kind == "resize":
        rows, cols = control.get("rows"), control.get("cols")
        if _cells(rows) and _cells(cols):
            size = json.dumps({"Width": cols, "Height": rows}).encode()
            return [bytes([RESIZE]) + size]
        return []
    if kind == "eof" and v5:  # v4 has no way to close stdin alone
        return [bytes([CLOSE, STDIN])]
    return []


def _cells(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and (0 < value <= MAX_TERMINAL_CELLS)
    )


def final_message(data: bytes) -> dict[str, object]:
    """The agent protocol's last message for the ``Status`` on channel 3: the exit code
    (0 on Success; a NonZeroExitCode's ``ExitCode`` cause), else the error it says."""
    try:
        status = json.loads(data)
    except (ValueError, RecursionError):
        status = None
    if not isinstance(status, dict):
        return {"type": "error", "status": 502, "detail": "exec ended with no status"}
    if status.get("status") == "Success":
        return {"type": "exit", "exit_code": 0}
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    if status.get("reason") == "NonZeroExitCode" and isinstance(causes, list):
        for cause in causes:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return {"type": "exit", "exit_code": int(cause.get("message", ""))}
                except ValueError:
                    break
    message = str(status.get("message") or status.get("reason") or "exec failed")[:1000]
    return {"type": "error", "status": 502, "detail": message}
