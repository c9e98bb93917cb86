"""S1 end to end: API submissions, durable in the database, until all of them are running.

Per backend (SQLite file, PostgreSQL) and case (1 cpu / 1 GB; 1/2/4/8 GPUs): a fresh database
with the fleet (bulk insert) and the already-running workloads (through the services), then
real gpuyard processes on 127.0.0.1 in each layout: one ``gpuyard serve`` (uvicorn, API +
scheduler loop); ``serve --no-loops`` beside one ``gpuyard worker``; and on PostgreSQL the
scale layout of ``deploy/compose.yaml``, 3 ``serve --no-loops`` API processes and 2 workers
on the Redis bus (the clients spread over the three APIs). Concurrent clients (aiohttp, one
keep-alive connection each) POST the workloads over HTTP; the clock runs from the first
POST until the database shows every one of them running. The clients share this 2-core
machine with the server, as they would on a single host. The same client then posts the
same bodies to a do-nothing FastAPI endpoint (:mod:`bench.http_floor`, the HTTP floor
baseline), the ceiling for any FastAPI server with this client on this machine.

The prepared database is made once per backend and copied per case (a file copy for SQLite,
``CREATE DATABASE ... TEMPLATE`` for PostgreSQL). Then, on SQLite: the service layer alone
(``create_workload`` and scheduling cycles, no HTTP) timed, then under cProfile; and per
backend a sampled in-process server run (:mod:`bench.scenarios.s1_server_profile`). These
are the profiles docs/benchmarks.md shows.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dbcheck
from bench.dbfleet import bench_settings, connect, insert_fleet, open_db
from bench.http_floor import floor_server
from bench.pg import PgDatabases
from bench.redis import redis
from bench.result import ScenarioResult, Table
from bench.scenarios.s1_server_profile import sampled_run
from bench.serve import free_port, post_workloads, serve, token
from bench.stats import percentile, rate
from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.bootstrap import build_context
from gpuyard.services.loops.leases import SCHEDULER_LEASE, release_leases
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.submission import create_workload


@dataclass(frozen=True)
class E2EConfig:
    servers: int
    running: int
    basic: int
    gpu: int
    clients: int
    backends: tuple[str, ...]
    sampled: int  # workloads of the in-process, sampled server run (0 = skip)
    cprofile: bool  # also profile the service layer with cProfile
    timeout_s: float


QUICK = E2EConfig(5000, 1000, 2000, 1000, 16, ("sqlite", "postgres"), 300, True, 120)
FULL = E2EConfig(5000, 1000, 10_000, 5000, 16, ("sqlite", "postgres"), 5000, True, 900)
SMOKE = E2EConfig(10, 2, 12, 0, 2, ("sqlite",), 0, False, 60)  # gpu 0: basic case only


def specs(kind: str, count: int, prefix: str) -> list[dict[str, Any]]:
    """Request bodies: 1 cpu / 1 GB, or 1/2/4/8 GPUs with 4 cpu and 32 GB per GPU."""
    out = []
    for i in range(count):
        body: dict[str, Any] = {"image": "busybox", "name": f"{prefix}{i:06d}"}
        if kind == "basic":
            body.update(cpu=1, ram_gb=1)
        else:
            gpus = (1, 2, 4, 8)[i % 4]
            body.update(cpu=4 * gpus, ram_gb=32 * gpus, gpu=gpus)
        out.append(body)
    return out


def prepare(data_dir: Path, url: str | None, cfg: E2EConfig) -> None:
    """A database with the fleet and ``cfg.running`` workloads running (4 cpu, 16 GB,
    1 GPU each), submitted and scheduled through the services."""
    db = open_db(data_dir, url)
    insert_fleet(db, cfg.servers)
    for i in range(cfg.running):
        spec = WorkloadCreate(image="busybox", name=f"pre-{i:05d}", cpu=4, ram_gb=16, gpu=1)
        create_workload(db.ctx, db.caller, spec)
    deadline = time.monotonic() + cfg.timeout_s
    while dbcheck.count_status(db.ctx, "running", "pre-") < cfg.running:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {cfg.running} pre-existing workloads running")
        run_scheduling_cycle(db.ctx)
    # Hand the scheduler lease (PostgreSQL) over as a clean stop does; otherwise the
    # served copies wait for this preparation's lease to lapse before scheduling anything.
    release_leases(db.ctx, [SCHEDULER_LEASE])
    db.ctx.db.dispose()


class Templates:
    """One prepared database per backend, copied for every case (preparing is slow)."""

    def __init__(self, cfg: E2EConfig, root: Path, pg: PgDatabases | None) -> None:
        self.cfg, self.root, self.pg = cfg, root, pg
        self._sqlite: Path | None = None
        self._pg: str | None = None

    def sqlite(self, name: str) -> Path:
        if self._sqlite is None:
            self._sqlite = self.root / "template" / "data"
            prepare(self._sqlite, None, self.cfg)
        target = self.root / name / "data"
        shutil.copytree(self._sqlite, target)
        return target

    def postgres(self, name: str) -> tuple[Path, str]:
        assert self.pg is not None
        if self._pg is None:
            self._pg = self.pg.fresh("s1tmpl")
            prepare(self.root / "pg-template" / "data", self._pg, self.cfg)
        data_dir = self.root / name / "data"
        shutil.copytree(self.root / "pg-template" / "data", data_dir)  # its secret key
        return data_dir, self.pg.clone(self._pg, "s1")


@dataclass(frozen=True)
class Layout:
    """How the processes are deployed: API processes, worker processes, the Redis bus."""

    apis: int
    workers: int
    redis: bool
    suffix: str  # of the figures' keys


#: Deployment layouts: the API and the loops in one process, beside a worker process, or
#: the scale layout of deploy/compose.yaml (PostgreSQL only: N APIs need a shared database).
LAYOUTS = {
    "serve": Layout(1, 0, False, ""),
    "serve + worker": Layout(1, 1, False, "_worker"),
    "3 API + 2 workers, Redis": Layout(3, 2, True, "_scale"),
}


def http_case(
    data_dir: Path,
    url: str | None,
    cfg: E2EConfig,
    kind: str,
    count: int,
    layout: Layout,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """POST ``count`` workloads to real ``gpuyard serve`` processes laid out as ``layout``
    (the clients round robin over its API processes); time until all run."""
    ctx = build_context(bench_settings(data_dir, url))
    prefix = f"e2e-{kind}-"
    bodies = specs(kind, count, prefix)
    bus = redis_url if layout.redis else None
    with serve(layout.apis, data_dir, url, workers=layout.workers, redis_url=bus) as urls:
        headers = {"Authorization": f"Bearer {token(urls[0])}"}
        submitted, latencies = post_workloads(urls, headers, bodies, cfg.clients)
        posted = time.perf_counter()  # the clock ran from the first POST
        deadline = time.monotonic() + cfg.timeout_s
        running = 0
        while running < count and time.monotonic() < deadline:
            running = dbcheck.count_status(ctx, "running", prefix)
            if running < count:
                time.sleep(0.05)
        total = submitted + time.perf_counter() - posted
    to_running = dbcheck.submit_to_running(ctx, prefix)
    ctx.db.dispose()
    return {
        "workloads": count,
        "running": running,
        "seconds": total,
        "per_s": rate(running, total),
        "complete": running == count,
        "submit_per_s": rate(count, submitted),
        "post_p50_ms": percentile(latencies, 50) * 1000,
        "post_p99_ms": percentile(latencies, 99) * 1000,
        "to_running_p50_s": percentile(to_running, 50),
        "to_running_p99_s": percentile(to_running, 99),
    }


def floor_case(cfg: E2EConfig, count: int) -> dict[str, Any]:
    """The same client and bodies against a do-nothing FastAPI endpoint (bench.http_floor)."""
    with floor_server(free_port()) as url:
        post_workloads([url], {}, specs("basic", min(count, 200), "warm-"), cfg.clients)  # warm up
        seconds, latencies = post_workloads([url], {}, specs("basic", count, "floor-"), cfg.clients)
    return {
        "workloads": count,
        "submit_per_s": rate(count, seconds),
        "post_p50_ms": percentile(latencies, 50) * 1000,
        "post_p99_ms": percentile(latencies, 99) * 1000,
    }


def service_layer(data_dir: Path, count: int, profiled: bool) -> tuple[dict[str, Any], str]:
    """The same submissions through ``create_workload`` (no HTTP), then scheduling cycles
    until all run, on SQLite; optionally under cProfile."""
    db = connect(data_dir, None)
    profiler = cProfile.Profile() if profiled else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    for i in range(count):
        create_workload(db.ctx, db.caller, WorkloadCreate(image="busybox", name=f"svc-{i:06d}"))
    submitted = time.perf_counter() - started
    cycles = 0
    while dbcheck.count_status(db.ctx, "running", "svc-") < count:
        run_scheduling_cycle(db.ctx)
        cycles += 1
    total = time.perf_counter() - started
    db.ctx.db.dispose()
    if profiler:
        profiler.disable()
        return {}, _excerpt(profiler, total)
    figures = {
        "workloads": count,
        "submit_per_s": rate(count, submitted),
        "schedule_per_s": rate(count, total - submitted),
        "per_s": rate(count, total),
        "cycles": cycles,
    }
    return figures, ""


def _excerpt(profiler: cProfile.Profile, wall: float, lines: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"gpuyard|sqlalchemy/orm/session|sqlite3", lines)
    body = re.sub(r"\S*/(site-packages|src)/", "", out.getvalue())
    start = body.find("   ncalls")
    header = f"cProfile of the service layer, {wall:.2f} s under the profiler (cumulative):\n"
    return header + (body[start:] if start >= 0 else body).rstrip()


def run(cfg: E2EConfig, result: ScenarioResult, pg: PgDatabases | None) -> None:
    """Add the end-to-end figures, tables and profiles to S1's ``result``."""
    wants_redis = pg is not None and "postgres" in cfg.backends
    with (
        tempfile.TemporaryDirectory(prefix="gpuyard-bench-s1-") as tmp,
        redis() if wants_redis else nullcontext((None, "")) as (redis_url, why),
    ):
        if wants_redis and redis_url is None:
            result.notes.append(f"S1 scale layout skipped: no Redis here ({why}).")
        templates = Templates(cfg, Path(tmp), pg)
        _http_cases(cfg, result, templates, redis_url)
        _service_layer(cfg, result, templates)


def _http_cases(
    cfg: E2EConfig, result: ScenarioResult, templates: Templates, redis_url: str | None
) -> None:
    table = Table(
        f"End to end over HTTP: {cfg.servers:,} servers, {cfg.running:,} running, "
        f"{cfg.clients} client connections; `gpuyard serve` alone, `serve --no-loops` beside "
        "one `gpuyard worker`, or (PostgreSQL) 3 `serve --no-loops` and 2 workers on Redis",
        ["backend", "layout", "case", "workloads", "all running after", "end to end /s",
         "POST /s", "POST p50", "POST p99", "submit->running p99"],
    )  # fmt: skip
    best: dict[tuple[str, str], float] = {}  # (backend, kind) -> best layout's rate
    for backend in cfg.backends:
        if backend == "postgres" and templates.pg is None:
            result.notes.append("S1 PostgreSQL rows skipped: no PostgreSQL server here.")
            continue
        for kind, count in (("basic", cfg.basic), ("gpu", cfg.gpu)):
            for name, layout in LAYOUTS.items():
                if not count:
                    continue
                if layout.apis > 1 and (backend != "postgres" or redis_url is None):
                    continue  # the scale layout: PostgreSQL and Redis only
                case = f"{backend}-{kind}{layout.suffix or '_serve'}"
                if backend == "postgres":
                    data_dir, url = templates.postgres(case)
                else:
                    data_dir, url = templates.sqlite(case), None
                figures = http_case(data_dir, url, cfg, kind, count, layout, redis_url)
                figures["layout"] = name
                result.figures[f"e2e_{backend}_{kind}{layout.suffix}"] = figures
                if layout.apis == 1:  # the targets' figure, comparable with earlier runs
                    key = (backend, kind)
                    best[key] = max(best.get(key, 0.0), figures["per_s"])
                table.add(
                    backend, name, kind, count,
                    f"{figures['seconds']:.1f} s" + ("" if figures["complete"] else " (timeout)"),
                    figures["per_s"], figures["submit_per_s"],
                    f"{figures['post_p50_ms']:.1f} ms", f"{figures['post_p99_ms']:.1f} ms",
                    f"{figures['to_running_p99_s']:.2f} s",
                )  # fmt: skip
    floor = floor_case(cfg, cfg.basic)
    result.figures["http_floor"] = floor
    table.add(
        "HTTP floor (baseline)", "-", "basic", cfg.basic, "-", "-", floor["submit_per_s"],
        f"{floor['post_p50_ms']:.1f} ms", f"{floor['post_p99_ms']:.1f} ms", "-",
    )  # fmt: skip
    result.notes.append(
        "HTTP floor (baseline, not gpuyard): the same clients and bodies against a "
        "do-nothing FastAPI endpoint under uvicorn (bench/http_floor.py: gpuyard's request "
        "and response models, no authentication, database or scheduler). No FastAPI server "
        f"could serve this client faster on this machine: {floor['submit_per_s']:.0f} POST/s."
    )
    result.notes.append(
        "End-to-end figure per case: the better one-API layout on each backend, then the "
        "slower backend (the target holds only if both databases meet it); the scale layout "
        "is shown beside them, not counted."
    )
    for kind in ("basic", "gpu"):
        scale = result.figures.get(f"e2e_postgres_{kind}_scale")
        if scale is not None:
            scale["vs_http_floor"] = scale["per_s"] / floor["submit_per_s"]
            result.notes.append(
                f"Scale layout, {kind}: {scale['per_s']:.0f}/s end to end through 3 API "
                f"processes and 2 workers on PostgreSQL + Redis, "
                f"{scale['vs_http_floor']:.2f}x the HTTP floor (one process; all share this "
                "machine's cores with the clients)."
            )
    for kind in ("basic", "gpu"):
        rates = [rate for (_, k), rate in best.items() if k == kind]
        if rates:
            result.figures[f"e2e_{kind}_per_s"] = min(rates)
            result.figures[f"e2e_{kind}_vs_http_floor"] = min(rates) / floor["submit_per_s"]
    result.tables.append(table)


def _service_layer(cfg: E2EConfig, result: ScenarioResult, templates: Templates) -> None:
    figures, _ = service_layer(templates.sqlite("service"), cfg.basic, profiled=False)
    if not figures:
        return
    result.figures["service_layer_sqlite_basic"] = figures
    svc = Table(
        "Service layer without HTTP (SQLite, in-process: submit all, then schedule)",
        ["workloads", "create_workload /s", "scheduling /s", "end to end /s", "cycles"],
    )
    svc.add(
        figures["workloads"], figures["submit_per_s"], figures["schedule_per_s"],
        figures["per_s"], figures["cycles"],
    )  # fmt: skip
    result.tables.append(svc)
    profiles = []
    if cfg.cprofile:
        _, text = service_layer(templates.sqlite("cprofile"), cfg.basic, profiled=True)
        profiles.append(text)
    for backend in cfg.backends if cfg.sampled else ():
        if backend == "postgres" and templates.pg is None:
            continue
        if backend == "postgres":
            data_dir, url = templates.postgres("sampled-pg")
        else:
            data_dir, url = templates.sqlite("sampled"), None
        bodies = specs("basic", cfg.sampled, "smp-")
        sampled, report = sampled_run(data_dir, url, bodies, "smp-", cfg.clients, cfg.timeout_s)
        result.figures[f"sampled_http_{backend}_basic"] = sampled
        profiles.append(
            f"Server under the S1 basic load over HTTP ({backend}, {cfg.sampled:,} workloads, "
            f"{sampled['per_s']:.0f}/s end to end while sampled):\n{report}"
        )
    result.profile = "\n\n".join(profiles)
