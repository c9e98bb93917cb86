"""S2 concurrent reservations: 64 clients, several deciders, one database.

500 servers (64 cpu, 512 GB, 8 GPUs) in a fresh SQLite file or PostgreSQL database, served by
several real ``gpuyard serve`` processes that all run the scheduler loop, so their decisions
race in the database. 64 clients (32 in this process and 32 spread over 4 client
processes, each client one keep-alive connection) POST a deterministic mix: CPU-only,
RAM-heavy, whole GPUs (1/2/4/8), shared GPUs (0.1-0.9) and gangs of 2-8 replicas. Every
workload runs 1-4 s (simulated) and then frees its room, so the cluster churns. The run
ends when every workload has been running at least once.

Checked from the database, not from the clients: every ~second (and at the end) one
consistent snapshot (REPEATABLE READ on PostgreSQL) recomputes each server's and each GPU's
allocation from the allocation rows and compares it with the guarded counters and the
capacity (a GPU above 1000 milli or a server above capacity is an oversubscription), and
counts gangs with some but not all replicas placed. Commits/s: workloads admitted (first
``running`` event) per second from the first POST to the last admission.
"""

from __future__ import annotations

import multiprocessing
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dbcheck
from bench.dbfleet import insert_fleet, open_db
from bench.pg import PgDatabases
from bench.result import ScenarioResult, Table
from bench.serve import post_workloads, serve, token
from bench.stats import percentile, rate
from gpuyard.services.context import ServiceContext


@dataclass(frozen=True)
class S2Config:
    servers: int
    requests: int
    own_clients: int  # connections from this process
    client_processes: int
    clients_per_process: int
    deciders: int  # gpuyard serve processes, each running the scheduler loop
    backends: tuple[str, ...]
    timeout_s: float


QUICK = S2Config(500, 3000, 32, 4, 8, 2, ("sqlite", "postgres"), 150)
FULL = S2Config(500, 20_000, 32, 4, 8, 2, ("sqlite", "postgres"), 900)
SMOKE = S2Config(10, 16, 2, 1, 2, 1, ("sqlite",), 60)
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}
PREFIX = "s2-"


def request_mix(count: int, seed: int = 2) -> list[dict[str, Any]]:
    """The mixed requests (deterministic)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        body: dict[str, Any] = {"image": "busybox", "name": f"{PREFIX}{i:06d}",
                                "duration_s": rng.choice((1, 2, 3, 4))}  # fmt: skip
        kind = rng.choices(("cpu", "ram", "whole", "share", "gang"), (25, 10, 25, 25, 15))[0]
        if kind == "cpu":
            body.update(cpu=rng.randint(1, 8), ram_gb=rng.randint(1, 32))
        elif kind == "ram":
            body.update(cpu=1, ram_gb=rng.choice((64, 96, 128)))
        elif kind == "whole":
            gpus = rng.choice((1, 2, 4, 8))
            body.update(cpu=2 * gpus, ram_gb=16 * gpus, gpu=gpus)
        elif kind == "share":
            body.update(cpu=1, ram_gb=4, gpu=rng.randint(1, 9) / 10)
        else:
            body.update(cpu=2, ram_gb=8, gpu=rng.choice((0, 0.5, 1)), replicas=rng.randint(2, 8),
                        gang=True)  # fmt: skip
        out.append(body)
    return out


def post_share(
    urls: list[str],
    bodies: list[dict[str, Any]],
    clients: int,
    ready: Callable[[], object],
    results: multiprocessing.Queue[list[float]] | None = None,
) -> list[float]:
    """POST ``bodies`` from ``clients`` connections spread over ``urls``; each request's
    latency in seconds (also put on ``results`` when run in a client process). Logging in
    and connecting happen before ``ready`` is called, which waits until every client
    process is ready, so their start-up is not timed."""
    auth = {"Authorization": f"Bearer {token(urls[0])}"}
    latencies = post_workloads(urls, auth, bodies, clients, ready=ready)[1]
    if results is not None:
        results.put(latencies)
    return latencies


def run_backend(data_dir: Path, url: str | None, cfg: S2Config) -> dict[str, Any]:
    db = open_db(data_dir, url)
    insert_fleet(db, cfg.servers)
    bodies = request_mix(cfg.requests)
    clients = cfg.own_clients + cfg.client_processes * cfg.clients_per_process
    own = bodies[: len(bodies) * cfg.own_clients // clients]
    rest = bodies[len(own) :]
    shares = [rest[i :: cfg.client_processes] for i in range(cfg.client_processes)]
    auditor = Auditor(db.ctx)
    with serve(cfg.deciders, data_dir, url) as urls, auditor:
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(cfg.client_processes + 1, timeout=cfg.timeout_s)
        clock = StartClock()
        results: multiprocessing.Queue[list[float]] = spawn.Queue()
        remote = [
            spawn.Process(target=post_share, args=(urls, share, cfg.clients_per_process, start.wait,
                                                   results), daemon=True)
            for share in shares
        ]  # fmt: skip
        for proc in remote:
            proc.start()

        def start_clock() -> None:
            start.wait()
            clock.start()

        latencies = post_share(urls, own, cfg.own_clients, start_clock)
        for _ in remote:
            latencies += results.get(timeout=cfg.timeout_s)
        for proc in remote:
            proc.join(cfg.timeout_s)
        posted = time.perf_counter() - clock.perf
        started_epoch = clock.epoch
        deadline = time.monotonic() + cfg.timeout_s
        admitted = 0
        while time.monotonic() < deadline:
            admitted = dbcheck.reached_running(db.ctx, PREFIX)
            if admitted >= cfg.requests:
                break
            time.sleep(0.2)
    worst = auditor.worst
    worst = _worse(worst, dbcheck.audit(db.ctx))
    window = dbcheck.running_window(db.ctx, PREFIX)
    to_running = dbcheck.submit_to_running(db.ctx, PREFIX)
    db.ctx.db.dispose()
    span = window[1] - started_epoch if window else float("nan")
    return {
        "requests": cfg.requests,
        "admitted": admitted,
        "complete": admitted >= cfg.requests,
        "commits_per_s": rate(admitted, span),
        "seconds": span,
        "post_per_s": rate(cfg.requests, posted),
        "post_p50_ms": percentile(latencies, 50) * 1000,
        "post_p99_ms": percentile(latencies, 99) * 1000,
        "to_running_p50_s": percentile(to_running, 50),
        "to_running_p99_s": percentile(to_running, 99),
        "oversubscriptions": worst.oversubscriptions,
        "counter_mismatches": len(worst.counter_mismatches),
        "partial_gangs": len(worst.partial_gangs),
        "audits": auditor.count + 1,
        "examples": (worst.servers_over_capacity + worst.gpus_over_1000 + worst.partial_gangs)[:5],
    }


class StartClock:
    """When every client was ready and the first POSTs went out."""

    perf = 0.0
    epoch = 0.0

    def start(self) -> None:
        self.perf, self.epoch = time.perf_counter(), time.time()


class Auditor:
    """Audits the database once a second in a background thread while the run goes on."""

    def __init__(self, ctx: ServiceContext, interval_s: float = 1.0) -> None:
        self.ctx, self.interval_s = ctx, interval_s
        self.worst = dbcheck.Audit()
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-auditor", daemon=True)

    def __enter__(self) -> Auditor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.worst = _worse(self.worst, dbcheck.audit(self.ctx))
            self.count += 1


def _worse(a: dbcheck.Audit, b: dbcheck.Audit) -> dbcheck.Audit:
    """The audit with more violations (for the maximum over the run)."""
    return b if _violations(b) > _violations(a) else a


def _violations(audit: dbcheck.Audit) -> int:
    return audit.oversubscriptions + len(audit.partial_gangs) + len(audit.counter_mismatches)


def run(mode: str, pg: PgDatabases | None) -> ScenarioResult:
    cfg = CONFIGS[mode]
    clients = cfg.own_clients + cfg.client_processes * cfg.clients_per_process
    setup = (
        f"{cfg.servers:,} servers, {cfg.requests:,} mixed requests from {clients} clients "
        f"(keep-alive connections: {cfg.own_clients} from the bench process + "
        f"{cfg.client_processes} processes x {cfg.clients_per_process}), {cfg.deciders} "
        "`gpuyard serve` deciders"
    )
    if mode == "quick":
        setup += " (quick: 3,000 requests; `make bench-full` sends 20,000)"
    result = ScenarioResult("S2", "Concurrent reservations", setup)
    table = Table(
        "Concurrent reservations (checked from the database)",
        ["backend", "admitted", "oversubscriptions", "partial gangs", "counter mismatches",
         "audits", "commits/s", "POST p50", "POST p99", "submit->running p99"],
    )  # fmt: skip
    for backend in cfg.backends:
        if backend == "postgres" and pg is None:
            result.notes.append("S2 PostgreSQL row skipped: no PostgreSQL server here.")
            continue
        url = pg.fresh("s2") if backend == "postgres" and pg else None
        with tempfile.TemporaryDirectory(prefix="gpuyard-bench-s2-") as tmp:
            figures = run_backend(Path(tmp) / "data", url, cfg)
        result.figures[backend] = figures
        table.add(
            backend, f"{figures['admitted']:,} of {figures['requests']:,}",
            figures["oversubscriptions"], figures["partial_gangs"],
            figures["counter_mismatches"], figures["audits"], figures["commits_per_s"],
            f"{figures['post_p50_ms']:.0f} ms", f"{figures['post_p99_ms']:.0f} ms",
            f"{figures['to_running_p99_s']:.2f} s",
        )  # fmt: skip
    measured = [f for k, f in result.figures.items() if isinstance(f, dict)]
    if measured:
        result.figures["oversubscriptions"] = sum(f["oversubscriptions"] for f in measured)
        result.figures["partial_gangs"] = sum(f["partial_gangs"] for f in measured)
        result.figures["commits_per_s"] = min(f["commits_per_s"] for f in measured)
    result.tables.append(table)
    return result
