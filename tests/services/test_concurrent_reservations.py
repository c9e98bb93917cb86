"""200 simultaneous requests race for 8 GPUs: exactly 8 run, the rest wait with reasons,
nothing is oversubscribed. From threads in one process with several concurrent deciders,
and from 4 separate `gpuyard serve` processes; on one SQLite file and on PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_context, make_settings, settle
from factories.processes import serve_processes
from sqlalchemy import select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.server_state import ServerStatus
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.workload_tables import WorkloadRow

REQUESTS = 200
GPUS = 8

pytestmark = pytest.mark.slow

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
]


def database_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def add_gpu_server(ctx: ServiceContext) -> None:
    """Two servers with 4 GPUs each: 8 in all, plenty of CPU and RAM."""
    with ctx.db.write() as session:
        cluster = ClusterRow(name="race", kind="simulated")
        session.add(cluster)
        session.flush()
        for n in range(2):
            server = ServerRow(
                name=f"race-{n}",
                cluster_id=cluster.id,
                status=ServerStatus.ONLINE.value,
                cpu_milli=1_000_000,
                ram_mib=10_000_000,
                storage_mib=0,
                gpu_milli=4000,
            )
            server.gpus = [
                ServerGpuRow(gpu_index=i, uuid=f"u{n}{i}", model="H100") for i in range(4)
            ]
            session.add(server)


def assert_exactly_eight_run(ctx: ServiceContext) -> None:
    with ctx.db.read() as session:
        workloads = session.scalars(select(WorkloadRow)).all()
        servers = session.scalars(select(ServerRow)).all()
        assert len(workloads) == REQUESTS
        running = [w for w in workloads if w.status == "running"]
        pending = [w for w in workloads if w.status == "pending"]
        assert len(running) == GPUS
        assert len(pending) == REQUESTS - GPUS
        assert all(w.reason and "GPU" in w.reason for w in pending), {w.reason for w in pending}
        # Counters agree with the reservations, and no GPU slot is handed out twice.
        for server in servers:
            mine = [a for w in running for a in w.allocations if a.server_id == server.id]
            assert server.alloc_gpu_milli == sum(a.gpu_milli for a in mine) <= server.gpu_milli
            for gpu in server.gpus:
                users = [a for a in mine if [gpu.gpu_index, 1000] in a.gpu_allocation]
                assert gpu.allocated_milli == 1000 * len(users) <= 1000


@pytest.fixture(params=BACKENDS)
def race_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> ServiceContext:
    ctx = make_context(make_settings(tmp_path / "data", database_url(request), demo=False))
    add_gpu_server(ctx)
    return ctx


def test_threads_with_concurrent_deciders(race_ctx: ServiceContext) -> None:
    ctx = race_ctx
    caller = Caller(user_id=_admin_id(ctx), email=ADMIN_EMAIL, role=Role.ADMIN)
    stop = threading.Event()

    def decide() -> None:  # four schedulers racing each other and the submitters
        while not stop.is_set():
            run_scheduling_cycle(ctx)

    deciders = [threading.Thread(target=decide) for _ in range(4)]
    for thread in deciders:
        thread.start()
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(
                pool.map(
                    lambda i: create_workload(
                        ctx, caller, WorkloadCreate(image="busybox", name=f"w{i}", cpu=1, gpu=1)
                    ),
                    range(REQUESTS),
                )
            )
    finally:
        stop.set()
        for thread in deciders:
            thread.join()
    settle(ctx)
    assert_exactly_eight_run(ctx)
    ctx.db.dispose()


def test_four_server_processes(race_ctx: ServiceContext, tmp_path: Path) -> None:
    ctx = race_ctx
    env = {
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_SCHEDULER_INTERVAL_S": "0.2",
        "GPUYARD_LOG_LEVEL": "WARNING",
        # No lease: all four processes decide at once, so the database guards are what
        # keeps them from oversubscribing (with a lease only one would plan).
        "GPUYARD_SCHEDULER_LEASE": "false",
    }
    with serve_processes(4, ctx.settings.data_dir, ctx.settings.database_url, env) as urls:
        token = httpx.post(
            f"{urls[0]}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def submit(i: int) -> int:
            body: dict[str, Any] = {"image": "busybox", "name": f"p{i}", "cpu": 1, "gpu": 1}
            return httpx.post(
                f"{urls[i % 4]}/api/v1/workloads", json=body, headers=headers, timeout=60
            ).status_code

        with ThreadPoolExecutor(max_workers=32) as pool:
            codes = list(pool.map(submit, range(REQUESTS)))
        assert codes == [201] * REQUESTS
        _wait_until_settled(ctx)
    settle(ctx)
    assert_exactly_eight_run(ctx)
    ctx.db.dispose()


def _admin_id(ctx: ServiceContext) -> str:
    from gpuyard.store.identity_tables import UserRow

    with ctx.db.read() as session:
        return str(session.scalar(select(UserRow.id).where(UserRow.email == ADMIN_EMAIL)))


def _wait_until_settled(ctx: ServiceContext) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with ctx.db.read() as session:
            running = session.scalars(
                select(WorkloadRow.id).where(WorkloadRow.status == "running")
            ).all()
            waiting = session.scalars(
                select(WorkloadRow.id).where(
                    WorkloadRow.status == "pending",
                    WorkloadRow.reason == "waiting for the scheduler",
                )
            ).all()
        if len(running) >= GPUS and not waiting:
            return
        time.sleep(0.2)
