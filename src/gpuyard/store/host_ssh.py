"""Repository of the ``server_ssh`` rows (never commits: the services own transactions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gpuyard.domain.host_ssh import HostKeyPin, ServerSsh, SshEndpoint
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.host_ssh_tables import ServerSshRow


def server_ssh_row(session: Session, server_id: str) -> ServerSshRow | None:
    return session.get(ServerSshRow, server_id)


def server_ssh_record(row: ServerSshRow) -> ServerSsh:
    """The read model of a row (no private key)."""
    pin = None
    if row.host_key is not None and row.host_key_fingerprint is not None:
        pinned_at = as_utc(row.host_key_pinned_at or row.updated_at)
        pin = HostKeyPin(row.host_key, row.host_key_fingerprint, pinned_at)
    return ServerSsh(
        server_id=row.server_id,
        endpoint=SshEndpoint(row.host, row.port, row.username),
        key_type=row.key_type,
        key_fingerprint=row.key_fingerprint,
        host_key=pin,
        updated_by=row.updated_by,
        updated_at=as_utc(row.updated_at),
    )


def put_server_ssh(
    session: Session,
    server_id: str,
    endpoint: SshEndpoint,
    private_key_enc: str,
    key_type: str,
    key_fingerprint: str,
    updated_by: str | None,
    now: datetime,
) -> tuple[ServerSshRow, bool]:
    """Insert or replace a server's settings; returns the row and whether its pinned host
    key was dropped (it is kept only while host and port stay the same)."""
    row = session.get(ServerSshRow, server_id, with_for_update=True)
    if row is None:
        row = ServerSshRow(server_id=server_id)
        session.add(row)
    dropped = row.host_key is not None and (row.host, row.port) != (endpoint.host, endpoint.port)
    if dropped:
        row.host_key = row.host_key_fingerprint = row.host_key_pinned_at = None
    row.host = endpoint.host
    row.port = endpoint.port
    row.username = endpoint.username
    row.private_key_enc = private_key_enc
    row.key_type = key_type
    row.key_fingerprint = key_fingerprint
    row.updated_by = updated_by
    row.updated_at = now
    session.flush()
    return row, dropped


def delete_server_ssh(session: Session, server_id: str) -> bool:
    """Forget a server's settings; whether there were any."""
    result = session.execute(delete(ServerSshRow).where(ServerSshRow.server_id == server_id))
    return bool(getattr(result, "rowcount", 0))


def pin_host_key(
    session: Session, server_id: str, public_key: str, fingerprint: str, now: datetime
) -> tuple[str | None, bool]:
    """Pin ``public_key`` unless a key is pinned already (compare-and-set on NULL). Returns
    the key pinned now (``public_key``, or the other key another connection pinned first;
    None when the settings are gone) and whether this call pinned it."""
    result = session.execute(
        update(ServerSshRow)
        .where(ServerSshRow.server_id == server_id, ServerSshRow.host_key.is_(None))
        .values(host_key=public_key, host_key_fingerprint=fingerprint, host_key_pinned_at=now)
    )
    pinned: str | None = session.scalar(
        select(ServerSshRow.host_key).where(ServerSshRow.server_id == server_id)
    )
    return pinned, bool(getattr(result, "rowcount", 0))


def unpin_host_key(session: Session, server_id: str) -> str | None:
    """Forget the pinned host key; the fingerprint that was pinned (None: nothing was)."""
    row = session.get(ServerSshRow, server_id, with_for_update=True)
    if row is None or row.host_key is None:
        return None
    fingerprint = row.host_key_fingerprint
    row.host_key = row.host_key_fingerprint = row.host_key_pinned_at = None
    session.flush()
    return fingerprint


def server_name_and_agent_url(session: Session, server_id: str) -> tuple[str, str | None] | None:
    """The server's name and agent URL (its host is the default SSH host), or None."""
    row = session.execute(
        select(ServerRow.name, ServerRow.agent_url).where(ServerRow.id == server_id)
    ).first()
    return None if row is None else (row.name, row.agent_url)
