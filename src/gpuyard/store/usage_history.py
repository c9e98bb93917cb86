"""Repository of the utilisation/allocation history and of the agents' last readings
(tables in ``usage_tables.py``). Never commits; every dialect branch is here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gpuyard.domain.usage import GpuLoad, GpuReading, UsageReading
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.usage_tables import UsageReadingRow, UsageSampleRow

_SAMPLES: Table = UsageSampleRow.__table__  # type: ignore[assignment]
_READINGS: Table = UsageReadingRow.__table__  # type: ignore[assignment]


class ServerAllocation(NamedTuple):
    """One server as the sampler needs it: kind, status, each dimension's (allocated,
    capacity) in internal units, and its GPUs."""

    server_id: str
    kind: str
    status: str
    cpu: tuple[int, int]
    ram: tuple[int, int]
    storage: tuple[int, int]
    gpu: tuple[int, int]
    gpus: tuple[GpuLoad, ...]


class StoredPoint(NamedTuple):
    t: int
    samples: int
    figures: dict[str, Any]


def _insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def server_allocations(session: Session) -> list[ServerAllocation]:
    """Every server with its counters and GPUs, as plain values (two statements)."""
    gpus: dict[str, list[GpuLoad]] = {}
    gpu_rows = session.execute(
        select(
            ServerGpuRow.server_id,
            ServerGpuRow.gpu_index,
            ServerGpuRow.allocated_milli,
            ServerGpuRow.memory_mib,
        ).order_by(ServerGpuRow.server_id, ServerGpuRow.gpu_index)
    )
    for server_id, index, allocated_milli, memory_mib in gpu_rows:
        gpus.setdefault(server_id, []).append(GpuLoad(index, allocated_milli, memory_mib))
    rows = session.execute(
        select(
            ServerRow.id,
            ClusterRow.kind,
            ServerRow.status,
            ServerRow.alloc_cpu_milli,
            ServerRow.cpu_milli,
            ServerRow.alloc_ram_mib,
            ServerRow.ram_mib,
            ServerRow.alloc_storage_mib,
            ServerRow.storage_mib,
            ServerRow.alloc_gpu_milli,
            ServerRow.gpu_milli,
        )
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .order_by(ServerRow.id)
    )
    return [
        ServerAllocation(
            r[0],
            r[1],
            r[2],
            (r[3], r[4]),
            (r[5], r[6]),
            (r[7], r[8]),
            (r[9], r[10]),
            tuple(gpus.get(r[0], ())),
        )
        for r in rows
    ]


def record_reading(session: Session, server_id: str, at: datetime, reading: UsageReading) -> None:
    """Keep ``reading`` as the server's last one (replacing the one before)."""
    values = {
        "server_id": server_id,
        "at": at,
        "cpu_used_pct": reading.cpu_used_pct,
        "ram_used_pct": reading.ram_used_pct,
        "gpus": [[g.index, g.utilization_pct, g.memory_used_pct] for g in reading.gpus],
    }
    statement = _insert(session, _READINGS).values(**values)
    changed = {k: v for k, v in values.items() if k != "server_id"}
    session.execute(statement.on_conflict_do_update(index_elements=["server_id"], set_=changed))


def readings_since(session: Session, since: datetime) -> dict[str, UsageReading]:
    """Each server's last reading, if taken at or after ``since``."""
    rows = session.execute(
        select(
            UsageReadingRow.server_id,
            UsageReadingRow.cpu_used_pct,
            UsageReadingRow.ram_used_pct,
            UsageReadingRow.gpus,
        ).where(UsageReadingRow.at >= since)
    )
    return {
        server_id: UsageReading(
            cpu, ram, tuple(GpuReading(int(g[0]), g[1], g[2]) for g in gpus or [])
        )
        for server_id, cpu, ram, gpus in rows
    }


def insert_samples(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add rows (series, bucket_s, t, samples, figures) in one statement for the batch; a
    row whose bucket is already there (another process sampled the same slot) is skipped."""
    if rows:
        statement = _insert(session, _SAMPLES).on_conflict_do_nothing()
        session.execute(statement, list(rows))


def newest_bucket(session: Session, bucket_s: int) -> int | None:
    """The start of the newest row of one level (None when it has none)."""
    newest: int | None = session.scalar(
        select(func.max(UsageSampleRow.t)).where(UsageSampleRow.bucket_s == bucket_s)
    )
    return newest


def oldest_bucket(session: Session, bucket_s: int) -> int | None:
    """The start of the oldest row of one level (None when it has none)."""
    oldest: int | None = session.scalar(
        select(func.min(UsageSampleRow.t)).where(UsageSampleRow.bucket_s == bucket_s)
    )
    return oldest


def raw_samples_between(session: Session, start: int, end: int) -> list[tuple[str, int, Any]]:
    """(series, t, figures) of the raw samples with ``start <= t < end``."""
    rows = session.execute(
        select(UsageSampleRow.series, UsageSampleRow.t, UsageSampleRow.figures).where(
            UsageSampleRow.bucket_s == 0, UsageSampleRow.t >= start, UsageSampleRow.t < end
        )
    )
    return [(series, t, figures) for series, t, figures in rows]


def delete_before(session: Session, bucket_s: int, before: int) -> int:
    """Delete one level's rows older than ``before``; how many went."""
    result = session.execute(
        delete(UsageSampleRow).where(UsageSampleRow.bucket_s == bucket_s, UsageSampleRow.t < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def series_points(
    session: Session, series: str, bucket_s: int, since: int, until: int
) -> list[StoredPoint]:
    """One series' rows of one level with ``since <= t < until``, oldest first."""
    rows = session.execute(
        select(UsageSampleRow.t, UsageSampleRow.samples, UsageSampleRow.figures)
        .where(
            UsageSampleRow.series == series,
            UsageSampleRow.bucket_s == bucket_s,
            UsageSampleRow.t >= since,
            UsageSampleRow.t < until,
        )
        .order_by(UsageSampleRow.t)
    )
    return [StoredPoint(t, samples, figures) for t, samples, figures in rows]


def count_rows(session: Session, levels: Iterable[int]) -> dict[int, int]:
    """Rows per level (for the bench and the tests' bounds)."""
    found = dict(
        session.execute(
            select(UsageSampleRow.bucket_s, func.count())
            .where(UsageSampleRow.bucket_s.in_(list(levels)))
            .group_by(UsageSampleRow.bucket_s)
        ).all()
    )
    return {level: int(found.get(level, 0)) for level in levels}
