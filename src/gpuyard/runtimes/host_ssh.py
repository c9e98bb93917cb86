"""SSH to a server's own host (issue 19), with asyncssh: a terminal for the control plane's
relay, commands and file uploads for ``gpuyard agent install``.

Host keys are trusted on first use (``domain/host_ssh.py``). With a pinned key, asyncssh is
given that key as the only trusted one, so a host presenting another is refused during the
key exchange, before the client authenticates; the refusal names both fingerprints (the
presented one is read by a second, unauthenticated key exchange). Without a pinned key,
the key the host presents is handed to the caller's ``pin`` callback once the login
succeeded; the callback records it (or refuses, when another connection pinned a
different key meanwhile).

A terminal speaks the agent's exec protocol (docs/agent.md) to the relay: binary frames
are stdin and output, text frames JSON control messages (``stdin``, ``resize``, ``eof``),
and the last frame is ``{"type": "exit", "exit_code": N}``.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncssh

from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, UpstreamProblem
from gpuyard.domain.host_ssh import (
    MAX_PASSPHRASE_CHARS,
    MAX_PRIVATE_KEY_CHARS,
    KeyFacts,
    SshCredentials,
    SshEndpoint,
    changed_host_key_detail,
)

#: Seconds to open the TCP connection and finish the key exchange and login.
CONNECT_TIMEOUT_S = 10.0
#: Terminal sizes a resize may ask for, rows and columns alike (as the kubernetes relay).
MAX_TERMINAL_CELLS = 10_000
READ_CHUNK = 65_536
TERM_TYPE = "xterm-256color"
#: Called with (public key line, fingerprint) the first time a host is reached.
PinHostKey = Callable[[str, str], Awaitable[None]]


class HostKeyChanged(Conflict):
    """The host presented a key other than the pinned one (409: un-pin it if expected)."""


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


def read_private_key(private_key: str, passphrase: str | None = None) -> tuple[str, KeyFacts]:
    """Parse a private key (OpenSSH, PEM/PKCS#1/PKCS#8; an encrypted one needs
    ``passphrase``): the key in unencrypted OpenSSH form (gpuyard encrypts it at rest
    itself, so no passphrase is kept) and its facts. InvalidInput names ``private_key`` (or
    ``passphrase``) when it is not one, without echoing any of it."""
    if len(private_key) > MAX_PRIVATE_KEY_CHARS:
        raise InvalidInput.for_field("private_key", f"at most {MAX_PRIVATE_KEY_CHARS} characters")
    if passphrase is not None and len(passphrase) > MAX_PASSPHRASE_CHARS:
        raise InvalidInput.for_field("passphrase", f"at most {MAX_PASSPHRASE_CHARS} characters")
    try:
        key = asyncssh.import_private_key(private_key.strip() + "\n", passphrase or None)
    except asyncssh.KeyEncryptionError as exc:
        raise InvalidInput.for_field("passphrase", "wrong passphrase for this key") from exc
    except (asyncssh.KeyImportError, ValueError, TypeError, UnicodeError) as exc:
        said = str(exc).lower()
        if "passphrase must be specified" in said:
            raise InvalidInput.for_field(
                "passphrase", "the key is encrypted: give its passphrase"
            ) from exc
        if passphrase and "decrypt" in said:  # PEM's answer to a wrong passphrase
            raise InvalidInput.for_field("passphrase", "wrong passphrase for this key") from exc
        raise InvalidInput.for_field(
            "private_key",
            "not a private key gpuyard can read (OpenSSH or PEM: ed25519, ecdsa, rsa)",
        ) from exc
    public_line = key.convert_to_public().export_public_key("openssh").decode().split()
    facts = KeyFacts(
        key_type=key.get_algorithm(),
        fingerprint=key.get_fingerprint("sha256"),
        public_key=" ".join(public_line[:2]),
    )
    return key.export_private_key("openssh").decode(), facts


def generate_key() -> tuple[str, KeyFacts]:
    """A new ed25519 key pair: the private key in OpenSSH form and its facts."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    return read_private_key(key.export_private_key("openssh").decode())


def public_key_facts(public_key: str) -> tuple[str, str]:
    """(OpenSSH line without comment, SHA256 fingerprint) of a public key line."""
    key = asyncssh.import_public_key(public_key)
    line = key.export_public_key("openssh").decode().split()
    return " ".join(line[:2]), key.get_fingerprint("sha256")


async def _presented_fingerprint(endpoint: SshEndpoint, pinned: str) -> str | None:
    """The fingerprint the host offers now for the pinned key's algorithm (no login)."""
    try:
        algorithm = asyncssh.import_public_key(pinned).get_algorithm()
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(
                endpoint.host, endpoint.port, server_host_key_algs=[algorithm]
            ),
            CONNECT_TIMEOUT_S,
        )
    except (OSError, asyncssh.Error, TimeoutError, ValueError):
        return None
    return key.get_fingerprint("sha256") if key is not None else None


@asynccontextmanager
async def connection(
    endpoint: SshEndpoint,
    credentials: SshCredentials,
    pinned: str | None,
    pin: PinHostKey,
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """An authenticated connection whose host key is the pinned one (or, none pinned yet,
    whose key ``pin`` accepted). HostKeyChanged (409) on another key; UpstreamProblem
    (502) when the host cannot be reached or refuses the login."""
    where = f"{endpoint.host}:{endpoint.port}"
    known_hosts: Any = ([asyncssh.import_public_key(pinned)], [], []) if pinned else None
    try:
        key = asyncssh.import_private_key(credentials.private_key, credentials.passphrase)
        conn = await asyncssh.connect(
            endpoint.host,
            endpoint.port,
            username=endpoint.username,
            client_keys=[key],
            known_hosts=known_hosts,
            agent_path=None,
            password=None,
            config=[],
            connect_timeout=CONNECT_TIMEOUT_S,
            login_timeout=CONNECT_TIMEOUT_S,
            keepalive_interval=30,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        if pinned is None:  # nothing was pinned, so nothing can have changed
            raise UpstreamProblem(502, f"{where}: its host key could not be read") from exc
        _line, pinned_fingerprint = public_key_facts(pinned)
        presented = await _presented_fingerprint(endpoint, pinned)
        detail = changed_host_key_detail(endpoint, pinned_fingerprint, presented)
        raise HostKeyChanged(detail, [FieldError("host_key", "changed")]) from exc
    except asyncssh.PermissionDenied as exc:
        raise UpstreamProblem(
            502,
            f"{where} refused the login of {endpoint.username!r} with the stored key "
            "(is its public half in that user's ~/.ssh/authorized_keys?)",
        ) from exc
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise UpstreamProblem(502, f"cannot reach {where} over SSH: {exc}"[:1000]) from exc
    try:
        if pinned is None:
            host_key = conn.get_server_host_key()
            if host_key is None:  # a certificate-only host: nothing to pin
                raise UpstreamProblem(502, f"{where} presented no plain host key to pin")
            line = " ".join(host_key.export_public_key("openssh").decode().split()[:2])
            await pin(line, host_key.get_fingerprint("sha256"))
        yield conn
    finally:
        conn.close()
        await conn.wait_closed()


@asynccontextmanager
async def open_terminal(
    endpoint: SshEndpoint,
    credentials: SshCredentials,
    pinned: str | None,
    pin: PinHostKey,
    command: Sequence[str] = (),
    tty: bool = True,
) -> AsyncIterator[SshTerminal]:
    """A login shell (or ``command``) on the host, in the exec protocol; with ``tty`` a
    pseudo-terminal (stderr merged, as a terminal shows it), else stderr follows stdout."""
    async with connection(endpoint, credentials, pinned, pin) as conn:
        options: dict[str, Any] = (
            {"term_type": TERM_TYPE, "term_size": (80, 24)} if tty else {"stderr": asyncssh.STDOUT}
        )
        try:
            process = await conn.create_process(
                shlex.join(command) if command else None, encoding=None, **options
            )
        except (OSError, asyncssh.Error) as exc:
            raise UpstreamProblem(502, f"the host refused the session: {exc}"[:1000]) from exc
        try:
            yield SshTerminal(process)
        finally:
            process.close()


class SshTerminal:
    """An SSH session seen through the agent's exec protocol."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process

    async def send(self, frame: bytes | str) -> None:
        """A user's frame: binary is stdin; text a JSON control message (stdin, resize,
        eof; anything else is ignored, as the agent ignores it). Input after the session
        ended is dropped: the exit frame is on its way."""
        try:
            self._take(frame)
        except (OSError, asyncssh.Error):
            return

    def _take(self, frame: bytes | str) -> None:
        if isinstance(frame, bytes):
            self._process.stdin.write(frame)
            return
        try:
            control = json.loads(frame)
        except ValueError:
            return
        if not isinstance(control, dict):
            return
        kind = control.get("type")
        if kind == "stdin" and isinstance(control.get("data"), str):
            self._process.stdin.write(control["data"].encode())
        elif kind == "resize":
            rows, cols = control.get("rows"), control.get("cols")
            if isinstance(rows, int) and isinstance(cols, int) and _cells(rows) and _cells(cols):
                self._process.change_terminal_size(cols, rows)
        elif kind == "eof":
            self._process.stdin.write_eof()

    def __aiter__(self) -> AsyncIterator[bytes | str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[bytes | str]:
        """Output as it comes, then the exit code (128 + signal, as a shell reports it)."""
        while chunk := await self._process.stdout.read(READ_CHUNK):
            yield chunk
        completed = await self._process.wait()
        yield json.dumps({"type": "exit", "exit_code": exit_code(completed)})


def exit_code(completed: asyncssh.SSHCompletedProcess) -> int:
    """The command's exit status; 128 + the signal's number when a signal ended it."""
    if completed.exit_status is not None and completed.exit_status >= 0:
        return int(completed.exit_status)
    signals = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "PIPE": 13, "TERM": 15}
    signal = completed.exit_signal[0] if completed.exit_signal else ""
    return 128 + signals.get(signal, 0) if signal else 255


def _cells(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TERMINAL_CELLS
    )


async def run_command(
    conn: asyncssh.SSHClientConnection, command: str, stdin: str | None = None
) -> CommandResult:
    """Run one shell command on an open connection and wait for it."""
    completed = await conn.run(command, input=stdin, check=False)
    out, err = completed.stdout, completed.stderr
    return CommandResult(
        exit_code(completed),
        out if isinstance(out, str) else (out or b"").decode(errors="replace"),
        err if isinstance(err, str) else (err or b"").decode(errors="replace"),
    )
