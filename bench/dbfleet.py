"""A real gpuyard context over a real database, with a simulated fleet inserted in bulk.

The end-to-end scenarios use the same services the API calls. The fleet is written with one
multi-row INSERT per table (setting up 5,000 servers through the API would dominate the
run and is not what is measured); everything after that goes through the services.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bench.fleet import DEFAULT_SHAPE, ServerShape
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
from gpuyard.services.bootstrap import build_context, ensure_first_admin
from gpuyard.services.context import ServiceContext
from gpuyard.settings import Settings
from gpuyard.store.base import new_id, utcnow
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.identity_tables import UserRow

ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway local database
_CHUNK = 1000


@dataclass
class BenchDb:
    """An opened context, the admin caller, and the cluster the fleet lives in."""

    ctx: ServiceContext
    caller: Caller
    cluster_id: str


def bench_settings(data_dir: Path, database_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "run_loops": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def open_db(data_dir: Path, database_url: str | None) -> BenchDb:
    """Migrate, create the admin and an empty simulated cluster."""
    ctx = build_context(bench_settings(data_dir, database_url))
    ensure_first_admin(ctx)
    with ctx.db.write() as session:
        cluster = ClusterRow(name="bench", kind="simulated")
        session.add(cluster)
        session.flush()
        cluster_id = cluster.id
        user_id = session.scalar(select(UserRow.id).where(UserRow.email == ADMIN_EMAIL))
    caller = Caller(user_id=str(user_id), email=ADMIN_EMAIL, role=Role.ADMIN)
    return BenchDb(ctx, caller, cluster_id)


def connect(data_dir: Path, database_url: str | None) -> BenchDb:
    """Open a database :func:`open_db` prepared (possibly a copy of one)."""
    ctx = build_context(bench_settings(data_dir, database_url))
    with ctx.db.read() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.email == ADMIN_EMAIL))
        cluster_id = session.scalar(select(ClusterRow.id).where(ClusterRow.name == "bench"))
    caller = Caller(user_id=str(user_id), email=ADMIN_EMAIL, role=Role.ADMIN)
    return BenchDb(ctx, caller, str(cluster_id))


def insert_fleet(
    db: BenchDb,
    count: int,
    shape: ServerShape = DEFAULT_SHAPE,
    *,
    status: str = "online",
    name_prefix: str = "node",
) -> None:
    """``count`` servers of ``shape`` in ``status``, named ``<name_prefix>-00000`` on,
    with their GPUs, in bulk."""
    now = utcnow()
    servers: list[dict[str, Any]] = []
    gpus: list[dict[str, Any]] = []
    for n in range(count):
        server_id = new_id()
        name = f"{name_prefix}-{n:05d}"
        servers.append(
            {
                "id": server_id,
                "name": name,
                "cluster_id": db.cluster_id,
                "status": status,
                "labels": {},
                "cpu_milli": round(shape.cpu * 1000),
                "ram_mib": round(shape.ram_gb * MIB_PER_GB),
                "storage_mib": round(shape.storage_gb * MIB_PER_GB),
                "gpu_milli": shape.gpus * GPU_MILLI,
                "alloc_cpu_milli": 0,
                "alloc_ram_mib": 0,
                "alloc_storage_mib": 0,
                "alloc_gpu_milli": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        gpus += [
            {
                "server_id": server_id,
                "gpu_index": i,
                "uuid": f"GPU-{name}-{i}",
                "model": shape.model,
                "memory_mib": 80 * MIB_PER_GB,
                "allocated_milli": 0,
            }
            for i in range(shape.gpus)
        ]
    with db.ctx.db.write() as session:
        for table, rows in ((ServerRow, servers), (ServerGpuRow, gpus)):
            for start in range(0, len(rows), _CHUNK):
                session.execute(insert(table), rows[start : start + _CHUNK])
