"""S8 warm pools: launch-to-running latency of a launch served from a warm pool versus
a cold start of the same image, on the same real dockerd.

A dockerd from the machine's binaries (the test suite's harness, a busybox image made
with ``docker import``), one real ``gpuyard agent`` (uvicorn on 127.0.0.1) registered as
a docker server, SQLite, loops ticked by hand in this process (no interval waits: the
cold start is measured at its best, scheduler cycle and starter tick run at once).

- Pool: a pool of the image (``sleep 3600``, 0.1 cpu, 64 MB) kept at 2 warm containers.
  Each launch asks for exactly that and is timed from the call of ``create_workload``
  to its return with status ``running`` (the claim's commit and the relabel call to the
  agent included). Between launches, untimed: the claimed workload is stopped and its
  container removed, and the pool refilled.
- Cold: the same image with another request (0.2 cpu, so no pool matches), timed from
  ``create_workload`` through one scheduling cycle and one starter tick (the agent
  creates and starts the container) to the workload reading ``running``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dbfleet import open_db
from bench.pg import TESTS, PgDatabases
from bench.result import ScenarioResult, Table
from bench.stats import percentile
from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.containers.teardown import run_teardowns
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.specs import PoolDefinition, create_pool
from gpuyard.services.pools.tending import tend_pools
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import stop_workload
from gpuyard.services.workloads.submission import create_workload, get_workload


@dataclass(frozen=True)
class S8Config:
    launches: int


CONFIGS = {"quick": S8Config(50), "full": S8Config(200), "smoke": S8Config(3)}


@contextmanager
def _docker_server(base: Path) -> Iterator[tuple[Any, str]]:
    """(a context with one real agent registered, the busybox image) over a fresh dockerd."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from factories.docker_fleet import docker_fleet  # type: ignore[import-not-found]
    from support.dockerd import DockerServer  # type: ignore[import-not-found]

    db = open_db(base / "data", None)
    ctx = db.ctx
    ctx.settings = ctx.settings.model_copy(update={"stop_grace_period_s": 0.0})
    with (
        DockerServer() as dockerd,
        docker_fleet(ctx, dockerd, base / "agents", ["host-a"], admin=db.caller) as fleet,
    ):
        yield (ctx, fleet, db.caller), dockerd.image
    ctx.db.dispose()


def _refill(ctx: ServiceContext) -> None:
    for _ in range(3):
        run_teardowns(ctx)
        tend_pools(ctx)
        run_scheduling_cycle(ctx)
        start_scheduled(ctx)


def _finish(ctx: ServiceContext, caller: Any, workload_id: str) -> None:
    stop_workload(ctx, caller, workload_id)
    run_teardowns(ctx)


def _pool_launches(ctx: ServiceContext, caller: Any, image: str, count: int) -> list[float]:
    spec = WorkloadCreate(image=image, command=None, cpu=0.1, ram_gb=0.0625)
    latencies = []
    for _ in range(count):
        _refill(ctx)
        began = time.perf_counter()
        workload = create_workload(ctx, caller, spec)
        took = time.perf_counter() - began
        if workload.from_pool and workload.status == "running":
            latencies.append(took)
        _finish(ctx, caller, workload.id)
    return latencies


def _cold_launches(ctx: ServiceContext, caller: Any, image: str, count: int) -> list[float]:
    spec = WorkloadCreate(image=image, command=["sleep", "3600"], cpu=0.2, ram_gb=0.0625)
    latencies = []
    for _ in range(count):
        run_teardowns(ctx)
        began = time.perf_counter()
        workload = create_workload(ctx, caller, spec)
        run_scheduling_cycle(ctx)
        start_scheduled(ctx)
        status = get_workload(ctx, caller, workload.id).status
        took = time.perf_counter() - began
        if status == "running":
            latencies.append(took)
        _finish(ctx, caller, workload.id)
    return latencies


def run(mode: str, pg: PgDatabases | None) -> ScenarioResult:
    cfg = CONFIGS[mode]
    result = ScenarioResult(
        id="S8",
        title="Warm pools: launch to running, pool vs cold start",
        setup=(
            f"{cfg.launches} launches from a pool of 2 warm containers and {cfg.launches} "
            "cold starts of the same image, one real agent over one dockerd, SQLite, loops "
            "ticked by hand" + (" (quick mode: 50 of each)" if mode == "quick" else "")
        ),
    )
    with (
        tempfile.TemporaryDirectory(prefix="gpuyard-s8-") as tmp,
        _docker_server(Path(tmp)) as ((ctx, fleet, caller), image),
    ):
        definition = PoolDefinition(
            name="bench",
            image_type="busybox",
            image=image,
            server_id=fleet.servers["host-a"],
            cluster_id=None,
            target_size=2,
            port_min=43000,
            port_max=43099,
            container_port=None,
            cpu=0.1,
            ram_gb=0.0625,
            storage_gb=0,
            command=["sleep", "3600"],
        )
        create_pool(ctx, caller, definition)
        pool = _pool_launches(ctx, caller, image, cfg.launches)
        cold = _cold_launches(ctx, caller, image, cfg.launches)
    table = Table("Launch to running", ["start", "launches", "p50 ms", "p99 ms", "max ms"])
    for name, values in (("warm pool", pool), ("cold", cold)):
        table.add(
            name,
            len(values),
            round(percentile(values, 50) * 1000, 1) if values else None,
            round(percentile(values, 99) * 1000, 1) if values else None,
            round(max(values) * 1000, 1) if values else None,
        )
    result.tables.append(table)
    pool_p50 = percentile(pool, 50) if pool else float("nan")
    cold_p50 = percentile(cold, 50) if cold else float("nan")
    result.figures = {
        "pool_launches": len(pool),
        "cold_launches": len(cold),
        "pool_p50_s": pool_p50,
        "pool_p99_s": percentile(pool, 99) if pool else float("nan"),
        "cold_p50_s": cold_p50,
        "cold_p99_s": percentile(cold, 99) if cold else float("nan"),
        "speedup_p50": cold_p50 / pool_p50 if pool and cold else float("nan"),
    }
    if len(pool) < cfg.launches or len(cold) < cfg.launches:
        result.notes.append(f"only {len(pool)} pool and {len(cold)} cold launches reached running")
    return result
