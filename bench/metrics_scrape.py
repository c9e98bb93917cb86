"""``python -m bench.metrics_scrape [--servers 5000] [--scrapes 5] [--postgres]``: one
GET /metrics body (services/metrics) over S1's fleet: 5,000 simulated 8-GPU servers
(``bench.dbfleet.insert_fleet``), half of their GPUs allocated, and 1,000 pending
workloads over 10 teams and 5 priorities. Prints the database read, the whole render
(read, usage estimates, text), the body's size and series count, median and worst over
the scrapes. Not a test: it asserts nothing, it measures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from bench.dbfleet import BenchDb, insert_fleet, open_db
from bench.history_tick import _allocate_half, _database
from gpuyard.services.metrics.exposition import render_metrics
from gpuyard.services.metrics.fleet import read_fleet_metrics
from gpuyard.store.base import new_id, utcnow
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.workload_tables import WorkloadRow


def _queue(db: BenchDb, pending: int, teams: int) -> None:
    now = utcnow()
    with db.ctx.db.write() as session:
        team_ids = [new_id() for _ in range(teams)]
        session.execute(
            insert(TeamRow), [{"id": t, "name": f"team-{n}"} for n, t in enumerate(team_ids)]
        )
        session.execute(
            insert(WorkloadRow),
            [
                {
                    "id": new_id(),
                    "name": f"queued-{n}",
                    "image": "bench",
                    "owner_id": db.caller.user_id,
                    "team_id": team_ids[n % teams],
                    "priority": 1 + n % 5,
                    "status": "pending",
                    "reason_code": ("unschedulable", "quota", None)[n % 3],
                    "cpu_milli": 1000,
                    "ram_mib": 1024,
                    "storage_mib": 0,
                    "gpu_milli": 1000,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(pending)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_scrape", description=__doc__)
    parser.add_argument("--servers", type=int, default=5000)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir, _database(args.postgres) as url:
        db = open_db(Path(data_dir), url)
        insert_fleet(db, args.servers)
        _allocate_half(db.ctx)
        _queue(db, 1000, 10)
        ctx = db.ctx
        reads: list[float] = []
        renders: list[float] = []
        cpu: list[float] = []
        body = b""
        for _ in range(args.scrapes):
            reads.append(read_fleet_metrics(ctx).read_seconds)
            started, started_cpu = time.perf_counter(), time.process_time()
            body = render_metrics(ctx)
            renders.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        ctx.db.dispose()
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    dialect = "postgresql" if args.postgres else "sqlite"
    print(f"{args.servers} servers x 8 GPUs, {dialect}, {args.scrapes} scrapes")
    for label, seconds in (
        ("database read", reads),
        ("whole scrape", renders),
        ("scrape CPU", cpu),
    ):
        median, worst = 1000 * statistics.median(seconds), 1000 * max(seconds)
        print(f"  {label:<14} median {median:7.1f} ms  max {worst:7.1f} ms")
    print("  (scrape CPU: this process's CPU time; the rest of the whole scrape is waiting)")
    print(f"  body {len(body) / 1e6:.1f} MB, {series} samples")


if __name__ == "__main__":
    main()
