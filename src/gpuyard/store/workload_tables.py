"""Workloads, their per-replica allocations and their status events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gpuyard.domain.files_paths import DEFAULT_FILES_PATH, MAX_FILES_PATH_LENGTH
from gpuyard.store.base import Base, new_id, utcnow


class WorkloadRow(Base):
    __tablename__ = "workloads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"), index=True)
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("clusters.id"))
    image: Mapped[str] = mapped_column(String(512))
    command: Mapped[list[str] | None] = mapped_column(JSON)
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: Keys of ``env`` whose values the owner marked readable by others; every other value
    #: is a write-only secret outside its owner (migration 0008).
    plain_env_keys: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    ports: Mapped[list[int]] = mapped_column(JSON, default=list)
    node_selector: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)

    cpu_milli: Mapped[int]
    ram_mib: Mapped[int]
    storage_mib: Mapped[int]
    gpu_milli: Mapped[int]
    #: GPU memory each replica's share reserves on its device (0: none asked for).
    gpu_memory_mib: Mapped[int] = mapped_column(default=0, server_default="0")
    gpu_model: Mapped[str | None] = mapped_column(String(128))
    priority: Mapped[int] = mapped_column(default=3)
    preemptible: Mapped[bool] = mapped_column(default=True)
    replicas: Mapped[int] = mapped_column(default=1)
    gang: Mapped[bool] = mapped_column(default=False)
    duration_s: Mapped[float | None]
    #: Stopped this long after it started, warned before (opted in at submit; migration
    #: 0016, the culling loop: services/culling).
    max_lifetime_s: Mapped[int | None]

    # `status` is changed only through services/workloads/transitions.py (checked, recorded).
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    # Bumped on every change; the scheduler's compare-and-set admits only the version it saw.
    version: Mapped[int] = mapped_column(default=1)
    preemption_count: Mapped[int] = mapped_column(default=0)
    pending_since: Mapped[datetime | None]
    requeue_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Written by triggers only (migration 0005): when the row or its allocations last
    #: changed, so the scheduler's snapshot cache re-reads only workloads that moved.
    change_mark: Mapped[int] = mapped_column(BigInteger, server_default="0", index=True)
    #: A warm container of this pool (migration 0013); NULL for ordinary workloads.
    pool_id: Mapped[str | None] = mapped_column(
        ForeignKey("pools.id", ondelete="SET NULL"), index=True
    )
    pool_index: Mapped[int | None]
    #: ``available`` (owned by the pool's system owner, claimable) or ``assigned`` (handed
    #: to a user's launch); changed only by a compare-and-set on ``version``.
    pool_state: Mapped[str | None] = mapped_column(String(16))
    #: Whether the launch that made this workload took a warm container.
    from_pool: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: Where the files directory is mounted in its containers (migration 0014; the policy
    #: is domain/files_paths.py).
    files_path: Mapped[str] = mapped_column(
        String(MAX_FILES_PATH_LENGTH), default=DEFAULT_FILES_PATH, server_default=DEFAULT_FILES_PATH
    )

    allocations: Mapped[list[AllocationRow]] = relationship(
        back_populates="workload",
        order_by="AllocationRow.replica",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    __table_args__ = (
        # 0: available warm containers (domain.pools.POOL_PRIORITY); users give 1-5.
        CheckConstraint("priority BETWEEN 0 AND 5", name="priority_range"),
        CheckConstraint(
            "pool_state IS NULL OR pool_state IN ('available', 'assigned')", name="pool_state"
        ),
        CheckConstraint("replicas BETWEEN 1 AND 1024", name="replicas_range"),
        CheckConstraint(
            "cpu_milli >= 0 AND ram_mib >= 0 AND storage_mib >= 0 AND gpu_milli >= 0",
            name="request_non_negative",
        ),
        CheckConstraint(
            "status IN ('pending', 'scheduled', 'starting', 'running', 'succeeded', "
            "'failed', 'stopped', 'preempted', 'lost')",
            name="status",
        ),
        Index("ix_workloads_status_priority", "status", "priority"),
    )
    # Every ORM UPDATE carries "WHERE version = <seen>": a concurrent change makes it fail
    # with StaleDataError instead of silently overwriting (compare-and-set on the row).
    __mapper_args__ = {"version_id_col": version}


class AllocationRow(Base):
    """The reservation of one replica on one server (exists while it holds resources)."""

    __tablename__ = "allocations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), index=True
    )
    replica: Mapped[int]
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id"), index=True)
    cpu_milli: Mapped[int]
    ram_mib: Mapped[int]
    storage_mib: Mapped[int]
    gpu_milli: Mapped[int]
    #: GPU memory this reservation took on each device of ``gpu_allocation``.
    gpu_memory_mib: Mapped[int] = mapped_column(default=0, server_default="0")
    # ((gpu_index, milli), ...) as a list of pairs: a record of which devices; the guard
    # itself is server_gpus.allocated_milli.
    gpu_allocation: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    container_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workload: Mapped[WorkloadRow] = relationship(back_populates="allocations")

    __table_args__ = (UniqueConstraint("workload_id", "replica", name="uq_allocations_replica"),)


class WorkloadEventRow(Base):
    __tablename__ = "workload_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


#: The workloads table for set-based statements (typed for mypy).
WORKLOADS_TABLE = cast(Table, WorkloadRow.__table__)
