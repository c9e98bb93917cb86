"""What container runtimes need besides the reservation: host ports and pending teardowns.

Host ports are unique per server by a UNIQUE constraint, so two deciders (threads,
processes) can never hand one port to two containers. A port row belongs to one
allocation and goes with it (ON DELETE CASCADE): releasing the reservation frees the port
in the same transaction without a statement of its own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base, new_id, utcnow


class PortAllocationRow(Base):
    __tablename__ = "port_allocations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    host_port: Mapped[int]
    allocation_id: Mapped[str] = mapped_column(
        ForeignKey("allocations.id", ondelete="CASCADE"), index=True
    )
    workload_id: Mapped[str] = mapped_column(String(32), index=True)
    container_port: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("server_id", "host_port", name="uq_port_per_server"),)


class ContainerTeardownRow(Base):
    """A container whose reservation was released and that the cleanup loop must stop
    (after its grace period) and remove through the agent, retrying until done. Written
    in the transaction that released the reservation."""

    __tablename__ = "container_teardowns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    #: The runtime handle, "<server_name>/<container_id>".
    handle: Mapped[str] = mapped_column(String(256), unique=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    workload_id: Mapped[str] = mapped_column(String(32))
    #: Seconds between SIGTERM and SIGKILL; None: the configured stop grace period.
    grace_s: Mapped[float | None]
    reason: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_container_teardowns_next", "next_attempt_at"),)
