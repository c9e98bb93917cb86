"""A database the dashboard can be measured on: a simulated fleet and a mixed workload list.

The fleet (servers and their GPUs) is inserted in bulk (bench/dbfleet.py); the users with one
password hash between them; every workload goes through the services (``create_workload``,
scheduling cycles, ``stop_workload``), so the rows, events, allocations and audit entries are
the ones the product writes. About 10,000 workloads take a few seconds per thousand on the
2-core machine, far less than the same through HTTP.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import dbcheck
from bench.dbfleet import insert_fleet, open_db
from bench.fleet import DEFAULT_SHAPE
from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.passwords import hash_password
from gpuyard.auth.roles import Role
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.users import add_user
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.changes import stop_workload
from gpuyard.services.workloads.submission import create_workload

#: The GPU model of the fleet's one offline server: workloads asking for it are accepted
#: (a server could hold them once it is back) and wait, with the scheduler's reason.
OFFLINE_MODEL = "B200"
#: Threads submitting workloads at once while seeding.
SUBMITTERS = 8
USER_PASSWORD = "dashboard-bench-user-1"  # noqa: S105 - a throwaway local database


@dataclass(frozen=True)
class SeedSize:
    servers: int
    workloads: int
    users: int
    #: Share of the workloads the admin (who opens the pages) owns: "My workloads".
    admin_share: float = 0.1


@dataclass
class Seeded:
    """What was written, by status, and how long it took."""

    size: SeedSize
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def seed(data_dir: Path, size: SeedSize) -> Seeded:
    """Create the database in ``data_dir``: ``size.servers`` 8-GPU servers, all online
    but one offline server of another model; users; ``size.workloads`` workloads in
    creation order, in a repeating pattern of ten: seven ask for 1-2 GPUs of the fleet's
    model (placed by scheduling cycles while they fit, then every fourth of those is
    stopped) and three for the offline server's model (pending, with the scheduler's
    reason). So every screen of a table sorted by age shows running, stopped and pending
    rows, owned by many users."""
    started = time.perf_counter()
    db = open_db(data_dir, None)
    insert_fleet(db, size.servers - 1)
    offline = replace(DEFAULT_SHAPE, model=OFFLINE_MODEL)
    insert_fleet(db, 1, offline, status="offline", name_prefix="down")
    callers = [db.caller, *_add_users(db.ctx, size.users)]
    admin_every = max(1, round(1 / size.admin_share)) if size.admin_share else 0
    orders: list[tuple[Caller, WorkloadCreate]] = []
    for i in range(size.workloads):
        owner = db.caller if admin_every and i % admin_every == 0 else callers[1 + i % size.users]
        kind = i % 10
        if kind < 7:
            spec = WorkloadCreate(
                image="pytorch/pytorch:2.4", name=f"train-{i:05d}", cpu=4, ram_gb=32,
                gpu=1 + (kind == 6), priority=3,
            )  # fmt: skip
        else:
            spec = WorkloadCreate(
                image="nvcr.io/nvidia/pytorch:24.08", name=f"wait-{i:05d}", cpu=8, ram_gb=64,
                gpu=2, gpu_model=OFFLINE_MODEL,
            )  # fmt: skip
        orders.append((owner, spec))
    # Submitted from a few threads, as concurrent API requests are: the services' group
    # commit writes what is queued together (one transaction per batch, not per workload).
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        created = list(pool.map(lambda order: create_workload(db.ctx, *order), orders))
    _schedule_until_settled(db.ctx)  # the last cycle gave the waiting ones their reason
    placeable = [w.id for w in created if w.name.startswith("train-")]
    for workload_id in placeable[1::4]:  # the admin's first workload keeps running
        stop_workload(db.ctx, db.caller, workload_id)
    statuses = {
        status: dbcheck.count_status(db.ctx, status) for status in ("running", "pending", "stopped")
    }
    db.ctx.db.dispose()
    return Seeded(size, statuses, time.perf_counter() - started)


def _add_users(ctx: ServiceContext, count: int) -> list[Caller]:
    """``count`` users in one transaction, sharing one password hash (hashing is slow on
    purpose, and the bench never logs in as them)."""
    password_hash = hash_password(USER_PASSWORD)
    now = ctx.now()
    callers: list[Caller] = []
    with ctx.db.write() as session:
        for n in range(count):
            email = f"user{n:03d}@example.com"
            user = add_user(session, email, f"user{n:03d}", password_hash, Role.USER.value, now)
            callers.append(Caller(user_id=user.id, email=email, role=Role.USER))
    return callers


def _schedule_until_settled(ctx: ServiceContext, timeout_s: float = 300) -> None:
    """Scheduling cycles until one places nothing more (the fleet is full, or all placed)."""
    deadline = time.monotonic() + timeout_s
    running = -1
    while (now_running := dbcheck.count_status(ctx, "running")) > running:
        if time.monotonic() > deadline:
            raise RuntimeError(f"workloads still being placed after {timeout_s} s")
        running = now_running
        run_scheduling_cycle(ctx)
