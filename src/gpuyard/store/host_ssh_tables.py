"""Host SSH settings, one row per server (issue 19, migration 0019).

The private key is stored encrypted (``auth/encryption.SecretBox``), never in clear; its
type and fingerprint are kept beside it so a read never needs to decrypt. The pinned host
key is written once, at the first successful connection, by a compare-and-set on
``host_key IS NULL`` (``store/host_ssh.pin_host_key``): two first connections at the same
moment cannot pin two different keys. The row goes with its server.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base, utcnow


class ServerSshRow(Base):
    __tablename__ = "server_ssh"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int]
    username: Mapped[str] = mapped_column(String(32))
    private_key_enc: Mapped[str] = mapped_column(Text)
    key_type: Mapped[str] = mapped_column(String(64))
    key_fingerprint: Mapped[str] = mapped_column(String(128))
    #: The pinned host key (OpenSSH public line) and when; NULL until the first connection.
    host_key: Mapped[str | None] = mapped_column(Text)
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(128))
    host_key_pinned_at: Mapped[datetime | None]
    #: The user who last set it (no foreign key: the setting outlives its author's account).
    updated_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
        CheckConstraint(
            "(host_key IS NULL) = (host_key_fingerprint IS NULL)", name="host_key_whole"
        ),
    )
