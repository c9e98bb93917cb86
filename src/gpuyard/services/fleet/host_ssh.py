"""Host SSH per server (issue 19): the settings (key encrypted at rest), the pinned host
key, and the terminal the control plane relays to the dashboard and the CLI.

Rule 2 of docs/concurrency.md holds: the settings are read in a short read, the SSH
connection is opened with no transaction open, and the first connection's host key is
pinned in a short write of its own (a compare-and-set on "nothing pinned", so two first
connections at once pin one key and the other is refused if it saw another). Every change
and every terminal opened is audited; the private key never leaves this module decrypted
except into the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.host_ssh import (
    ServerSsh,
    SshCredentials,
    SshEndpoint,
    checked_endpoint,
)
from gpuyard.domain.replica_access import ExecStream, ExecTarget
from gpuyard.runtimes.host_ssh import open_terminal, public_key_facts, read_private_key
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store import host_ssh as store
from gpuyard.store.host_ssh_tables import ServerSshRow

#: A terminal's command: at most this many arguments, each at most this long.
MAX_COMMAND_ARGS = 256
MAX_COMMAND_CHARS = 4096


@dataclass(frozen=True)
class SshSettings:
    """What an operator sets; ``host`` None: the host of the server's agent URL."""

    host: str | None
    port: int
    username: str
    private_key: str
    passphrase: str | None = None

    def __repr__(self) -> str:  # the key and passphrase never reach a log line
        return f"SshSettings(host={self.host!r}, port={self.port}, username={self.username!r})"


def set_server_ssh(
    ctx: ServiceContext, caller: Caller, server_id: str, settings: SshSettings
) -> ServerSsh:
    """Store how to reach a server's host over SSH. The key is checked (422 on
    ``private_key`` or ``passphrase``), kept encrypted and never returned. The pinned host
    key stays while host and port stay the same."""
    private_key, facts = read_private_key(settings.private_key, settings.passphrase)
    now = ctx.now()
    with ctx.db.write() as session:
        found = store.server_name_and_agent_url(session, server_id)
        if found is None:
            raise NotFound.for_object("server", server_id)
        name, agent_url = found
        endpoint = checked_endpoint(
            settings.host if settings.host is not None else _agent_host(agent_url),
            settings.port,
            settings.username,
        )
        row, dropped = store.put_server_ssh(
            session,
            server_id,
            endpoint,
            ctx.secret_box.encrypt(private_key),
            facts.key_type,
            facts.fingerprint,
            caller.user_id,
            now,
        )
        record_audit(
            session,
            AuditActor.of(caller),
            "server.ssh_set",
            "server",
            server_id,
            now,
            {
                "name": name,
                "host": endpoint.host,
                "port": endpoint.port,
                "username": endpoint.username,
                "key_fingerprint": facts.fingerprint,
                "host_key_unpinned": dropped,
            },
        )
        return store.server_ssh_record(row)


def _agent_host(agent_url: str | None) -> str | None:
    """The host of a docker server's agent URL (where its host is most likely reached)."""
    return (urlsplit(agent_url).hostname or None) if agent_url else None


def get_server_ssh(ctx: ServiceContext, server_id: str) -> ServerSsh:
    """A server's SSH settings (no key). 404 when the server or its settings are missing."""
    with ctx.db.read() as session:
        return store.server_ssh_record(_settings_row(session, server_id))


def delete_server_ssh(ctx: ServiceContext, caller: Caller, server_id: str) -> None:
    """Forget a server's SSH settings, its key and its pinned host key."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _settings_row(session, server_id)
        details = {"host": row.host, "port": row.port, "key_fingerprint": row.key_fingerprint}
        store.delete_server_ssh(session, server_id)
        record_audit(
            session, AuditActor.of(caller), "server.ssh_delete", "server", server_id, now, details
        )


def unpin_host_key(ctx: ServiceContext, caller: Caller, server_id: str) -> ServerSsh:
    """Forget the pinned host key: the next connection pins what the host presents then.
    For a host that was reinstalled or had its keys rotated; audited."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _settings_row(session, server_id)
        fingerprint = store.unpin_host_key(session, server_id)
        if fingerprint is None:
            raise Conflict(
                "no host key is pinned for this server yet",
                [FieldError("host_key", "nothing pinned")],
            )
        record_audit(
            session,
            AuditActor.of(caller),
            "server.ssh_unpin",
            "server",
            server_id,
            now,
            {"host": row.host, "port": row.port, "host_key_fingerprint": fingerprint},
        )
        return store.server_ssh_record(row)


def _settings_row(session: Session, server_id: str) -> ServerSshRow:
    row = store.server_ssh_row(session, server_id)
    if row is None:
        if store.server_name_and_agent_url(session, server_id) is None:
            raise NotFound.for_object("server", server_id)
        raise NotFound(
            "this server has no SSH settings: set them first (PUT /api/v1/servers/{id}/ssh, "
            "or gpuyard server ssh-set)",
            [FieldError("server_id", "no SSH settings")],
        )
    return row


def _checked_command(command: Sequence[str]) -> list[str]:
    if len(command) > MAX_COMMAND_ARGS:
        raise InvalidInput.for_field("cmd", f"at most {MAX_COMMAND_ARGS} arguments")
    for part in command:
        if len(part) > MAX_COMMAND_CHARS or "\x00" in part:
            raise InvalidInput.for_field(
                "cmd", f"each argument at most {MAX_COMMAND_CHARS} characters, no NUL"
            )
    return list(command)


def terminal_target(
    ctx: ServiceContext, caller: Caller, server_id: str, command: Sequence[str], tty: bool
) -> ExecTarget:
    """How the relay opens a terminal on the server's host: the settings read and the key
    decrypted now (the opening is audited here, before any connection), the connection
    opened by the relay with no transaction held."""
    command = _checked_command(command)
    now = ctx.now()
    with ctx.db.write() as session:
        row = _settings_row(session, server_id)
        endpoint = SshEndpoint(row.host, row.port, row.username)
        pinned, encrypted = row.host_key, row.private_key_enc
        record_audit(
            session,
            AuditActor.of(caller),
            "server.terminal",
            "server",
            server_id,
            now,
            {"host": row.host, "port": row.port, "username": row.username,
             "command": command[:16], "tty": tty},
        )  # fmt: skip
    credentials = SshCredentials(ctx.secret_box.decrypt(encrypted))

    async def pin(public_key: str, fingerprint: str) -> None:
        await asyncio.to_thread(_pin, ctx, caller, server_id, endpoint, public_key, fingerprint)

    def opener() -> AbstractAsyncContextManager[ExecStream]:
        return open_terminal(endpoint, credentials, pinned, pin, command, tty)

    return ExecTarget(url=f"ssh://{endpoint}", headers={}, opener=opener)


def _pin(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    endpoint: SshEndpoint,
    public_key: str,
    fingerprint: str,
) -> None:
    """Record the host key of the first connection (trust on first use), audited. Another
    connection may have pinned first: the same key is fine, another one is refused."""
    now = ctx.now()
    with ctx.db.write() as session:
        pinned, pinned_now = store.pin_host_key(session, server_id, public_key, fingerprint, now)
        if pinned is None:
            raise NotFound("the server's SSH settings were deleted meanwhile")
        if pinned != public_key:
            theirs = public_key_facts(pinned)[1]
            raise Conflict(
                f"{endpoint.host}:{endpoint.port} presented {fingerprint}, but {theirs} was "
                "pinned meanwhile by another connection; nothing was sent",
                [FieldError("host_key", "changed")],
            )
        if not pinned_now:  # the same key, pinned by a connection a moment earlier
            return
        record_audit(
            session,
            AuditActor.of(caller),
            "server.ssh_pin",
            "server",
            server_id,
            now,
            {"host": endpoint.host, "port": endpoint.port, "host_key_fingerprint": fingerprint},
        )
