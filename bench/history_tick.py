"""``python -m bench.history_tick [--servers 1000] [--minutes 70] [--postgres]``: the
history loop's tick (services/usage/sampling.py) over a simulated fleet of 8-GPU servers,
half of their GPUs allocated, at the default settings (a sample every 10 s).

Ticks run back to back on a hand-moved clock (no sleeping): the first hour fills the raw
level, after which every tick also prunes one slot; ticks on a minute or a quarter-hour
boundary also roll up. Prints the tick's time per step (median, p95, max) for plain
ticks and for rollup ticks, the rows per level, the bytes per row measured, and the rows
and bytes each level holds at steady state (its retention full). Not a test: it asserts
nothing, it measures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import String, cast, func, select, text, update

from bench.dbfleet import insert_fleet, open_db
from bench.pg import postgres
from gpuyard.domain.usage import MINUTE_BUCKET_S, QUARTER_BUCKET_S
from gpuyard.services.usage.sampling import RAW, SamplingTick, sample_usage
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow
from gpuyard.store.usage_history import count_rows
from gpuyard.store.usage_tables import UsageSampleRow


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def _database(use_postgres: bool) -> Iterator[str | None]:
    if not use_postgres:
        yield None
        return
    with postgres() as (databases, why_not):
        if databases is None:
            raise SystemExit(f"no PostgreSQL: {why_not}")
        yield databases.fresh("history")


def _allocate_half(db_ctx: object) -> None:
    ctx = db_ctx
    with ctx.db.write() as session:  # type: ignore[attr-defined]
        session.execute(
            update(ServerGpuRow).where(ServerGpuRow.gpu_index < 4).values(allocated_milli=1000)
        )
        session.execute(
            update(ServerRow).values(
                alloc_gpu_milli=4000,
                alloc_cpu_milli=ServerRow.cpu_milli / 2,
                alloc_ram_mib=ServerRow.ram_mib / 4,
            )
        )


def _summary(ticks: list[SamplingTick], step: str) -> str:
    values = sorted(1000 * t.seconds[step] for t in ticks)
    if not values:
        return "-"
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"{statistics.median(values):7.1f} {p95:7.1f} {values[-1]:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history_tick", description=__doc__)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=70, help="virtual minutes of ticks")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir, _database(args.postgres) as url:
        db = open_db(Path(data_dir), url)
        insert_fleet(db, args.servers)
        _allocate_half(db.ctx)
        ctx = db.ctx
        interval = ctx.settings.history_sample_interval_s
        start = datetime.fromtimestamp(1_800_000_000 // 3600 * 3600, UTC)
        clock = _Clock(start)
        ctx.clock = clock
        plain: list[SamplingTick] = []
        rolling: list[SamplingTick] = []
        for n in range(args.minutes * 60 // interval):
            clock.now = datetime.fromtimestamp(start.timestamp() + n * interval, UTC)
            tick = sample_usage(ctx)
            (rolling if any(tick.rolled_up.values()) else plain).append(tick)
        levels = (RAW, MINUTE_BUCKET_S, QUARTER_BUCKET_S)
        with ctx.db.read() as session:
            rows = count_rows(session, levels)
            lengths: dict[int, float] = {
                int(bucket): float(length or 0)
                for bucket, length in session.execute(
                    select(
                        UsageSampleRow.bucket_s,
                        func.avg(func.length(cast(UsageSampleRow.figures, String))),
                    ).group_by(UsageSampleRow.bucket_s)
                ).all()
            }
            if ctx.db.is_sqlite:
                size_sql = "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%usage_samples%'"
            else:
                size_sql = "SELECT pg_total_relation_size('usage_samples')"
            size = int(session.execute(text(size_sql)).scalar() or 0)
        ctx.db.dispose()
    total_rows = max(1, sum(rows.values()))
    figures_bytes = sum(lengths.get(level, 0.0) * n for level, n in rows.items())
    overhead = (size - figures_bytes) / total_rows  # keys, row headers, both indexes
    series = args.servers + 1
    s = ctx.settings
    steady = {
        RAW: series * (s.history_raw_retention_s // interval + 1),
        MINUTE_BUCKET_S: series * (s.history_minute_retention_s // MINUTE_BUCKET_S + 1),
        QUARTER_BUCKET_S: series * (s.history_quarter_retention_s // QUARTER_BUCKET_S + 1),
    }
    print(
        f"{'PostgreSQL' if args.postgres else 'SQLite'}: {args.servers} servers x 8 GPUs, "
        f"{len(plain) + len(rolling)} ticks over {args.minutes} virtual minutes"
    )
    print("step (ms)       plain ticks: median p95 max   rollup ticks: median p95 max")
    for step in ("read", "sample", "write", "roll_up", "prune"):
        print(f"  {step:8s}   {_summary(plain, step)}      {_summary(rolling, step)}")
    totals = [sum(t.seconds.values()) for t in plain]
    print(f"  total      plain median {1000 * statistics.median(totals):.1f} ms")
    print(f"rows now: {rows}; {size:,} bytes; {overhead:.0f} bytes per row beside its figures")
    for level, count in steady.items():
        per_row = float(lengths.get(level, 0)) + overhead
        mib = count * per_row / 2**20
        print(f"  level {level:3d}: figures {float(lengths.get(level, 0)):.0f} bytes/row; "
              f"retention full: {count:,} rows, ~{mib:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
