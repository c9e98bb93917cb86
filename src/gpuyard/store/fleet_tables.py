"""Clusters, servers and their GPUs, with the allocation counters the database guards.

The CHECK constraints are the oversubscription guard of DESIGN.md section 1: whatever the
number of processes, an UPDATE that would allocate past capacity (or past 1000 milli on
one GPU) fails in the database itself.

``change_mark`` columns (servers here, workloads in workload_tables) are set by database
triggers (migration 0005) on every change the scheduler's snapshot depends on, so its
cache re-reads only what moved. A new column the snapshot reads must be added to the
triggers' column lists in a migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gpuyard.store.base import Base, new_id, utcnow


class ClusterRow(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    kubeconfig_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('docker', 'kubernetes', 'simulated')", name="kind"),
    )


class ServerRow(Base):
    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="online")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    agent_url: Mapped[str | None] = mapped_column(String(512))
    agent_token_enc: Mapped[str | None] = mapped_column(Text)
    #: Docker servers over HTTPS: the agent's own certificate (PEM), pinned at registration
    #: and the only one trusted for it (migration 0019); NULL: the public CAs, or plain HTTP.
    agent_tls_cert: Mapped[str | None] = mapped_column(Text)
    #: Docker servers: host ports for published container ports come from this range when
    #: set (e.g. several agents sharing one address); else from the per-image-type ranges.
    host_port_min: Mapped[int | None]
    host_port_max: Mapped[int | None]
    #: Consecutive health probes the agent missed (the health loop's count).
    missed_probes: Mapped[int] = mapped_column(default=0)
    last_seen_at: Mapped[datetime | None]

    cpu_milli: Mapped[int]
    ram_mib: Mapped[int]
    storage_mib: Mapped[int]
    gpu_milli: Mapped[int] = mapped_column(default=0)
    alloc_cpu_milli: Mapped[int] = mapped_column(default=0)
    alloc_ram_mib: Mapped[int] = mapped_column(default=0)
    alloc_storage_mib: Mapped[int] = mapped_column(default=0)
    alloc_gpu_milli: Mapped[int] = mapped_column(default=0)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Written by triggers only (see the module docstring): when the server's row or GPUs
    #: last changed, as a PostgreSQL transaction id or a SQLite ``change_clock`` value.
    change_mark: Mapped[int] = mapped_column(BigInteger, server_default="0", index=True)

    gpus: Mapped[list[ServerGpuRow]] = relationship(
        back_populates="server",
        order_by="ServerGpuRow.gpu_index",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    __table_args__ = (
        CheckConstraint(
            "status IN ('online', 'offline', 'draining', 'maintenance')", name="status"
        ),
        CheckConstraint(
            "cpu_milli >= 0 AND ram_mib >= 0 AND storage_mib >= 0 AND gpu_milli >= 0",
            name="capacity_non_negative",
        ),
        CheckConstraint("alloc_cpu_milli BETWEEN 0 AND cpu_milli", name="cpu_within_capacity"),
        CheckConstraint("alloc_ram_mib BETWEEN 0 AND ram_mib", name="ram_within_capacity"),
        CheckConstraint(
            "alloc_storage_mib BETWEEN 0 AND storage_mib", name="storage_within_capacity"
        ),
        CheckConstraint("alloc_gpu_milli BETWEEN 0 AND gpu_milli", name="gpu_within_capacity"),
    )


class ServerGpuRow(Base):
    __tablename__ = "server_gpus"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    gpu_index: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    memory_mib: Mapped[int] = mapped_column(default=0)
    allocated_milli: Mapped[int] = mapped_column(default=0)
    #: GPU memory reserved by shares that asked for some (``gpu_memory_gb``); moved only
    #: together with ``allocated_milli`` (store/reservations.py), within ``memory_mib``.
    allocated_memory_mib: Mapped[int] = mapped_column(default=0, server_default="0")
    utilization_pct: Mapped[float | None]

    server: Mapped[ServerRow] = relationship(back_populates="gpus")

    __table_args__ = (
        CheckConstraint("allocated_milli BETWEEN 0 AND 1000", name="milli_within_device"),
        CheckConstraint(
            "allocated_memory_mib BETWEEN 0 AND memory_mib", name="memory_within_device"
        ),
    )


class ChangeClockRow(Base):
    """One row: the counter SQLite's change-mark triggers advance (PostgreSQL marks with
    transaction ids and leaves it alone). SQLite serialises writers, so the counter orders
    changes by commit."""

    __tablename__ = "change_clock"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ServerEventRow(Base):
    """One status change of a server: from, to, why and who (``actor_id`` None: the
    system, such as the health loop)."""

    __tablename__ = "server_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
