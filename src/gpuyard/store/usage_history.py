"""Repository of the utilisation/allocation history and of the agents' last readings
(tables in ``usage_tables.py``). Never commits; every dialect branch is here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from gpuyard.domain.usage import (
    GPU_FIGURES,
    SERVER_FIGURES,
    GpuLoad,
    GpuReading,
    UsageReading,
    gpu_figure,
    parse_gpu_figure,
)
from gpuyard.store.base import dialect_insert
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.usage_tables import UsageReadingRow, UsageSampleRow

_SAMPLES: Table = UsageSampleRow.__table__  # type: ignore[assignment]
_READINGS: Table = UsageReadingRow.__table__  # type: ignore[assignment]


class ServerAllocation(NamedTuple):
    """One server as the sampler needs it: its cluster's kind, each dimension's
    (allocated, capacity) in internal units, and its GPUs."""

    server_id: str
    kind: str
    cpu: tuple[int, int]
    ram: tuple[int, int]
    storage: tuple[int, int]
    gpu: tuple[int, int]
    gpus: tuple[GpuLoad, ...]


class StoredPoint(NamedTuple):
    series: str
    t: int
    samples: int
    #: name -> (mean, highest); a raw sample's mean and highest are its value.
    figures: dict[str, tuple[float, float]]


def server_allocations(
    session: Session, after: str | None = None, limit: int | None = None
) -> list[ServerAllocation]:
    """Servers with their counters and GPUs, as plain values (two statements), in id
    order: those after ``after`` (a page's last id), at most ``limit`` of them."""
    page = (
        select(
            ServerRow.id,
            ClusterRow.kind,
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
    if after is not None:
        page = page.where(ServerRow.id > after)
    if limit is not None:
        page = page.limit(limit)
    rows = session.execute(page).all()
    if not rows:
        return []
    gpus: dict[str, list[GpuLoad]] = {}
    gpu_rows = session.execute(
        select(
            ServerGpuRow.server_id,
            ServerGpuRow.gpu_index,
            ServerGpuRow.allocated_milli,
            ServerGpuRow.memory_mib,
        )
        .where(ServerGpuRow.server_id >= rows[0][0], ServerGpuRow.server_id <= rows[-1][0])
        .order_by(ServerGpuRow.server_id, ServerGpuRow.gpu_index)
    )
    for server_id, index, allocated_milli, memory_mib in gpu_rows:
        gpus.setdefault(server_id, []).append(GpuLoad(index, allocated_milli, memory_mib))
    return [
        ServerAllocation(
            r[0],
            r[1],
            (r[2], r[3]),
            (r[4], r[5]),
            (r[6], r[7]),
            (r[8], r[9]),
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
    statement = dialect_insert(session, _READINGS).values(**values)
    changed = {k: v for k, v in values.items() if k != "server_id"}
    session.execute(statement.on_conflict_do_update(index_elements=["server_id"], set_=changed))


def readings_since(
    session: Session, since: datetime, server_ids: tuple[str, str] | None = None
) -> dict[str, UsageReading]:
    """Each server's last reading, if taken at or after ``since``; only the servers whose
    ids lie within ``server_ids`` (first, last; inclusive) when given."""
    query = select(
        UsageReadingRow.server_id,
        UsageReadingRow.cpu_used_pct,
        UsageReadingRow.ram_used_pct,
        UsageReadingRow.gpus,
    ).where(UsageReadingRow.at >= since)
    if server_ids is not None:
        query = query.where(
            UsageReadingRow.server_id >= server_ids[0], UsageReadingRow.server_id <= server_ids[1]
        )
    rows = session.execute(query)
    return {
        server_id: UsageReading(
            cpu, ram, tuple(GpuReading(int(g[0]), g[1], g[2]) for g in gpus or [])
        )
        for server_id, cpu, ram, gpus in rows
    }


FigureValue = float | tuple[float, float]


def _number(value: float) -> float | int:
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def _encoded(value: FigureValue | None) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple):
        avg, top = _number(value[0]), _number(value[1])
        return avg if avg == top else [avg, top]
    return _number(value)


def encode_figures(figures: Mapping[str, FigureValue]) -> list[Any]:
    """Figures (name -> percent, or (mean, highest)) -> the compact form stored:
    ``[[server figures in SERVER_FIGURES order], [[gpu index, allocated, utilization,
    memory used], ...]]``; each value null (unknown), a number (mean = highest) or
    [mean, highest], to 0.1 %. Names are not stored: a 1,000-server fleet keeps millions
    of rows."""
    server = [_encoded(figures.get(name)) for name in SERVER_FIGURES]
    gpus: dict[int, list[Any]] = {}
    for name, value in figures.items():
        parsed = parse_gpu_figure(name)
        if parsed is not None:
            index, figure = parsed
            entry = gpus.setdefault(index, [index, None, None, None])
            entry[1 + GPU_FIGURES.index(figure)] = _encoded(value)
    return [server, [gpus[i] for i in sorted(gpus)]]


def _decoded(value: Any) -> tuple[float, float] | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None


def decode_figures(stored: Any) -> dict[str, tuple[float, float]]:
    """The stored form back to name -> (mean, highest); what does not parse (a row an
    older or broken writer left) is skipped rather than failing the read."""
    figures: dict[str, tuple[float, float]] = {}
    if not isinstance(stored, list) or len(stored) != 2:
        return figures
    server, gpus = stored
    values = server if isinstance(server, list) else []
    # an older row may have fewer figures than this version knows
    for name, value in zip(SERVER_FIGURES, values, strict=False):
        decoded = _decoded(value)
        if decoded is not None:
            figures[name] = decoded
    for entry in gpus if isinstance(gpus, list) else []:
        if not isinstance(entry, list) or len(entry) != 1 + len(GPU_FIGURES):
            continue
        index = entry[0]
        if not isinstance(index, int) or isinstance(index, bool):
            continue
        for figure, value in zip(GPU_FIGURES, entry[1:], strict=True):
            decoded = _decoded(value)
            if decoded is not None:
                figures[gpu_figure(index, figure)] = decoded
    return figures


class SampleRow(NamedTuple):
    """One row of the history: a series' bucket (``bucket_s`` 0: a raw sample)."""

    series: str
    bucket_s: int
    t: int
    samples: int
    figures: Mapping[str, FigureValue]


def insert_samples(session: Session, rows: Sequence[SampleRow]) -> None:
    """Add rows in one statement for the batch; a row whose bucket is already there
    (another process sampled the same slot) is skipped."""
    if rows:
        statement = dialect_insert(session, _SAMPLES).on_conflict_do_nothing()
        values = [
            {
                "series": row.series,
                "bucket_s": row.bucket_s,
                "t": row.t,
                "samples": row.samples,
                "figures": encode_figures(row.figures),
            }
            for row in rows
        ]
        session.execute(statement, values)


def newest_bucket(session: Session, bucket_s: int, series: str | None = None) -> int | None:
    """The start of the newest row of one level, of one series when given (None when it
    has none)."""
    query = select(func.max(UsageSampleRow.t)).where(UsageSampleRow.bucket_s == bucket_s)
    if series is not None:
        query = query.where(UsageSampleRow.series == series)
    newest: int | None = session.scalar(query)
    return newest


def oldest_bucket(session: Session, bucket_s: int) -> int | None:
    """The start of the oldest row of one level (None when it has none)."""
    oldest: int | None = session.scalar(
        select(func.min(UsageSampleRow.t)).where(UsageSampleRow.bucket_s == bucket_s)
    )
    return oldest


def series_between(session: Session, bucket_s: int, start: int, end: int) -> list[str]:
    """The series with rows of one level with ``start <= t < end``, in order."""
    return list(
        session.scalars(
            select(UsageSampleRow.series)
            .where(
                UsageSampleRow.bucket_s == bucket_s,
                UsageSampleRow.t >= start,
                UsageSampleRow.t < end,
            )
            .distinct()
            .order_by(UsageSampleRow.series)
        )
    )


def rows_between(
    session: Session, bucket_s: int, start: int, end: int, series: tuple[str, str] | None = None
) -> list[StoredPoint]:
    """Every series' rows of one level with ``start <= t < end``, figures decoded; only
    the series within ``series`` (first, last; inclusive) when given."""
    query = select(
        UsageSampleRow.series, UsageSampleRow.t, UsageSampleRow.samples, UsageSampleRow.figures
    ).where(UsageSampleRow.bucket_s == bucket_s, UsageSampleRow.t >= start, UsageSampleRow.t < end)
    if series is not None:
        query = query.where(UsageSampleRow.series >= series[0], UsageSampleRow.series <= series[1])
    rows = session.execute(query)
    return [StoredPoint(series, t, n, decode_figures(figures)) for series, t, n, figures in rows]


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
    return [StoredPoint(series, t, n, decode_figures(figures)) for t, n, figures in rows]


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
