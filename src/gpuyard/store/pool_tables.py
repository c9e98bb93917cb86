"""Warm pool specs (migration 0013). Their warm containers are workload rows with pool
columns (``workload_tables.WorkloadRow.pool_id`` and the rest)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.domain.files_paths import DEFAULT_FILES_PATH, MAX_FILES_PATH_LENGTH
from gpuyard.store.base import Base, new_id, utcnow


class PoolRow(Base):
    __tablename__ = "pools"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: The image type slug (the image catalog's ``type``; not a foreign key to it).
    image_type: Mapped[str] = mapped_column(String(32), index=True)
    image: Mapped[str] = mapped_column(String(512))
    #: Exactly one of server_id, cluster_id (CHECK below). A pool goes with its server or
    #: cluster (ON DELETE CASCADE): one cannot be deleted while it runs work, and a pool
    #: of a place that is gone has nothing to keep warm.
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), index=True
    )
    cluster_id: Mapped[str | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    target_size: Mapped[int]
    port_min: Mapped[int]
    port_max: Mapped[int]
    container_port: Mapped[int | None]
    cpu_milli: Mapped[int]
    ram_mib: Mapped[int]
    storage_mib: Mapped[int]
    gpu_milli: Mapped[int] = mapped_column(default=0)
    command: Mapped[list[str] | None] = mapped_column(JSON)
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: Where each warm container's files directory is mounted (migration 0014): a launch
    #: claims one only when it asks for the same place.
    files_path: Mapped[str] = mapped_column(
        String(MAX_FILES_PATH_LENGTH), default=DEFAULT_FILES_PATH, server_default=DEFAULT_FILES_PATH
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("(server_id IS NULL) <> (cluster_id IS NULL)", name="server_or_cluster"),
        CheckConstraint("target_size BETWEEN 0 AND 256", name="target_size_range"),
        CheckConstraint(
            "port_min BETWEEN 1 AND 65535 AND port_max BETWEEN port_min AND 65535",
            name="port_range",
        ),
        CheckConstraint(
            "container_port IS NULL OR container_port BETWEEN 1 AND 65535",
            name="container_port_range",
        ),
        CheckConstraint(
            "cpu_milli >= 0 AND ram_mib >= 0 AND storage_mib >= 0 AND gpu_milli >= 0",
            name="request_non_negative",
        ),
    )
