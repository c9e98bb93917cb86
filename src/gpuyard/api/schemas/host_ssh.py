"""Host SSH schemas: how to reach a server's host, and what is pinned (never the key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import RequestModel
from gpuyard.domain.host_ssh import (
    DEFAULT_PORT,
    MAX_HOST_CHARS,
    MAX_PASSPHRASE_CHARS,
    MAX_PRIVATE_KEY_CHARS,
    ServerSsh,
)


class ServerSshRequest(RequestModel):
    """The private key is write-only: stored encrypted, never returned. An encrypted key
    needs its ``passphrase`` once (gpuyard keeps the key under its own encryption)."""

    host: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=MAX_HOST_CHARS,
            description="host name or IP address (default: the host of the agent URL)",
        ),
    ] = None
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PORT
    username: Annotated[str, Field(min_length=1, max_length=32, examples=["gpuyard"])]
    private_key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_PRIVATE_KEY_CHARS,
            description="OpenSSH or PEM private key (ed25519, ecdsa, rsa)",
        ),
    ]
    passphrase: Annotated[str | None, Field(default=None, max_length=MAX_PASSPHRASE_CHARS)] = None


class HostKeyPublic(BaseModel):
    public_key: str
    fingerprint: str
    pinned_at: datetime


class ServerSshPublic(BaseModel):
    """``host_key``: the key pinned at the first connection (null until then)."""

    server_id: str
    host: str
    port: int
    username: str
    key_type: str
    key_fingerprint: str
    host_key: HostKeyPublic | None
    updated_by: str | None
    updated_at: datetime

    @classmethod
    def of(cls, ssh: ServerSsh) -> ServerSshPublic:
        pin = ssh.host_key
        return cls(
            server_id=ssh.server_id,
            host=ssh.endpoint.host,
            port=ssh.endpoint.port,
            username=ssh.endpoint.username,
            key_type=ssh.key_type,
            key_fingerprint=ssh.key_fingerprint,
            host_key=None
            if pin is None
            else HostKeyPublic(
                public_key=pin.public_key, fingerprint=pin.fingerprint, pinned_at=pin.pinned_at
            ),
            updated_by=ssh.updated_by,
            updated_at=ssh.updated_at,
        )
