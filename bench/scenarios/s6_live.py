"""S6 live updates: from a status change committed in the database to its event on the
streams of open pages.

One real ``gpuyard serve --no-loops`` process (uvicorn, default stream settings: the
database is read every 0.2 s while a stream is open) on a fresh SQLite file or
PostgreSQL database, with several streams open on it (``GET /api/v1/stream`` read as a
browser's EventSource reads it, one connection and one thread each). This process, on
its own engine (as a worker or another API replica would be), stops one pending
workload at a time through the services, at random moments so that changes fall at
every phase of the server's polling. Latency is taken per change and per stream: from
just before the change's transaction begins to the moment the stream delivers its
``workload`` event with status ``stopped``; a change a stream never delivers within
10 s is counted as lost.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from bench.dbfleet import ADMIN_EMAIL, ADMIN_PASSWORD, open_db
from bench.pg import PgDatabases
from bench.result import ScenarioResult, Table
from bench.serve import free_port, token, wait_until
from bench.serve import is_ready as server_ready
from bench.stats import percentile
from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.workloads.changes import stop_workload
from gpuyard.services.workloads.submission import create_workload


@dataclass(frozen=True)
class S6Config:
    streams: int
    changes: int
    #: Mean pause between two changes (uniform in 0..2x): random poll phases.
    pause_s: float
    backends: tuple[str, ...]


QUICK = S6Config(8, 150, 0.05, ("sqlite", "postgres"))
FULL = S6Config(32, 1000, 0.05, ("sqlite", "postgres"))
SMOKE = S6Config(2, 5, 0.02, ("sqlite",))
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}
LOST_AFTER_S = 10.0


class _Stream:
    """One open stream; records when each stopped workload's event arrived."""

    def __init__(self, url: str, bearer: str) -> None:
        self.arrived: dict[str, float] = {}
        self.opened = threading.Event()
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {bearer}"}, timeout=60
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with connect_sse(
                self._client, "GET", "/api/v1/stream", params={"types": "workloads"}
            ) as source:
                self.opened.set()
                for event in source.iter_sse():
                    if event.event == "workload":
                        data = event.json()
                        if data["status"] == "stopped":
                            self.arrived.setdefault(data["id"], time.perf_counter())
        except httpx.HTTPError:
            pass  # closed at the end of the run
        finally:
            self.opened.set()

    def close(self) -> None:
        self._client.close()
        self._thread.join(5)


def _serve(data_dir: Path, database_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_LOG_LEVEL": "WARNING",
        "GPUYARD_LOCAL_DOCKER": "off",
    }
    port = free_port()
    args = [sys.executable, "-m", "gpuyard.cli.main", "serve", "--no-loops"]
    args += ["--port", str(port), "--data-dir", str(data_dir)]
    if database_url:
        args += ["--database-url", database_url]
    log = (data_dir.parent / "serve.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: server_ready(url),
        proc,
        "gpuyard serve",
        lambda: (data_dir.parent / "serve.log").read_text()[-3000:],
    )
    return proc, url


def backend_case(cfg: S6Config, database_url: str | None) -> dict[str, Any]:
    rng = random.Random(6)
    with tempfile.TemporaryDirectory(prefix="gpuyard-s6-") as tmp:
        data_dir = Path(tmp) / "data"
        db = open_db(data_dir, database_url)  # an empty cluster: every workload waits
        ids = [
            create_workload(db.ctx, db.caller, WorkloadCreate(image="busybox", name=f"s6-{i}")).id
            for i in range(cfg.changes)
        ]
        proc, url = _serve(data_dir, database_url)
        streams: list[_Stream] = []
        try:
            bearer = token(url)
            streams = [_Stream(url, bearer) for _ in range(cfg.streams)]
            for stream in streams:
                stream.opened.wait(30)
            time.sleep(0.5)  # every stream subscribed before the first change
            began: dict[str, float] = {}
            for workload_id in ids:
                time.sleep(rng.uniform(0, 2 * cfg.pause_s))
                began[workload_id] = time.perf_counter()
                stop_workload(db.ctx, db.caller, workload_id)
            deadline = time.perf_counter() + LOST_AFTER_S
            while time.perf_counter() < deadline and any(
                len(s.arrived) < len(ids) for s in streams
            ):
                time.sleep(0.05)
        finally:
            proc.terminate()  # ends the open streams at once (their readers return)
            proc.wait(30)
            for stream in streams:
                stream.close()
            db.ctx.db.dispose()
    latencies = [
        stream.arrived[wid] - began[wid]
        for stream in streams
        for wid in ids
        if wid in stream.arrived
    ]
    return {
        "deliveries": len(latencies),
        "lost": cfg.streams * cfg.changes - len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
    }


def run(mode: str, pg: PgDatabases | None) -> ScenarioResult:
    cfg = CONFIGS[mode]
    setup = (
        f"{cfg.streams} open streams on one `gpuyard serve --no-loops`; {cfg.changes} status "
        f"changes (pending -> stopped) committed by another engine, about "
        f"{1 / cfg.pause_s:.0f} a second at random moments; default poll interval 0.2 s"
    )
    result = ScenarioResult("S6", "Live updates", setup)
    table = Table(
        "From the change's transaction to the event on each open stream",
        ["backend", "deliveries", "lost", "p50", "p95", "p99", "max"],
    )
    worst_p95 = 0.0
    for backend in cfg.backends:
        if backend == "postgres" and pg is None:
            result.notes.append("PostgreSQL row skipped: no PostgreSQL server")
            continue
        url = pg.fresh("s6") if backend == "postgres" and pg is not None else None
        figures = backend_case(cfg, url)
        result.figures[backend] = figures
        worst_p95 = max(worst_p95, figures["p95_ms"] / 1000)
        result.figures["lost"] = result.figures.get("lost", 0) + figures["lost"]
        table.add(
            backend,
            figures["deliveries"],
            figures["lost"],
            f"{figures['p50_ms']:.0f} ms",
            f"{figures['p95_ms']:.0f} ms",
            f"{figures['p99_ms']:.0f} ms",
            f"{figures['max_ms']:.0f} ms",
        )
    result.figures["p95_s"] = worst_p95
    result.tables.append(table)
    return result
