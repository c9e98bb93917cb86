"""The scale layout of deploy/compose.yaml, as real processes: 3 API processes and 2 workers
on a real PostgreSQL and a real Redis, each started with the command the compose file gives
its service (read from the file) and the settings of its env file.

One test, in phases, because each phase builds on the state the last one left:

1. mixed load (submit, stop, resize, list) from several users through all three APIs: every
   acknowledged write is there, through every API; reservations are exact and no server is
   over capacity; a change through one API reaches another's stream within 0.5 s; a token
   revoked through one is refused by the others on their next request; the login throttle
   is one budget across the three;
2. ``kill -9`` of the worker holding the scheduler lease, with work in flight: the other
   takes the lease within the lease's time, and nothing is lost or done twice (every
   workload's events form one chain of transitions, no container twice);
3. Redis stops: every API says so on /readyz, submissions are still placed (polling); Redis
   comes back: every API is on the bus again and a change reaches another API's stream
   within 0.5 s; nothing written meanwhile is lost.

Polling is set far longer than the deadlines that only the bus may meet (the streams'
reads, the change watch, the caller cache). Takes about 50 s on the 2-core machine (10 s of
it waiting for the dead worker's lease to lapse), 2-3 minutes while other test runs load it.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_context, make_settings
from factories.live import StreamReader, is_workload
from sqlalchemy import select, text
from support.local_server import free_port, start_or_skip
from support.redis import RedisServer

from gpuyard.domain.workload_state import HOLDS_RESOURCES
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.leases import lease_ttl
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import WorkloadEventRow, WorkloadRow

from .files import process_argv, service_command, service_environment

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

APIS, WORKERS, USERS = 3, 2, 3
OPS_PER_USER = 24
#: The scheduler's own interval: its lease lapses lease_ttl(this) after its holder dies.
SCHEDULER_INTERVAL_S = 1.0
STREAM_DEADLINE_S = 0.5
#: For this test only, on top of what compose gives the processes: polling far slower than
#: the deadlines only the bus can meet, and an address budget large enough for the logins
#: of one machine's clients (the throttle phase uses the per-account limit, 5 failures).
TUNING = {
    "GPUYARD_SCHEDULER_INTERVAL_S": str(SCHEDULER_INTERVAL_S),
    "GPUYARD_STREAM_POLL_INTERVAL_S": "30",
    "GPUYARD_CHANGE_WATCH_INTERVAL_S": "30",
    "GPUYARD_CALLER_CACHE_S": "60",
    "GPUYARD_LOGIN_IP_MAX_ATTEMPTS": "1000",
    "GPUYARD_LOG_LEVEL": "WARNING",
}
HOLDING = {s.value for s in HOLDS_RESOURCES}
WORKER_STARTED = re.compile(r"worker ([0-9a-f]+): loops running")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def logged(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")


@dataclass
class Deployment:
    apis: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    worker_ids: dict[str, Process] = field(default_factory=dict)  # lease holder -> worker

    @property
    def urls(self) -> list[str]:
        return [api.url for api in self.apis]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()}" for p in self.apis + self.workers)


@contextmanager
def deployment(tmp_path: Path, env: dict[str, str]) -> Iterator[Deployment]:
    """The compose file's `api` service APIS times and its `worker` service WORKERS times,
    as processes on 127.0.0.1 (each its own data dir, as each container has its own)."""
    running = Deployment()
    everything: list[Process] = []

    def start(name: str, service: str, extra: dict[str, str]) -> Process:
        log = tmp_path / f"{name}.log"
        process_env = {
            **os.environ,
            **service_environment(service),
            **env,
            "GPUYARD_DATA_DIR": str(tmp_path / name),
            **extra,
        }
        with log.open("wb") as out:
            popen = subprocess.Popen(
                process_argv(service_command(service)),
                env=process_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log)
        everything.append(process)
        return process

    try:
        for i in range(APIS):
            port = free_port()
            api = start(f"api-{i}", "api", {"GPUYARD_HOST": "127.0.0.1", "GPUYARD_PORT": str(port)})
            api.url = f"http://127.0.0.1:{port}"
            running.apis.append(api)
        for i in range(WORKERS):  # INFO: their log says when their bus goes and comes back
            running.workers.append(start(f"worker-{i}", "worker", {"GPUYARD_LOG_LEVEL": "INFO"}))
        for api in running.apis:
            wait_until(lambda api=api: bus_state(api) == "redis: connected", 90, api)
        for worker in running.workers:
            wait_until(lambda w=worker: WORKER_STARTED.search(w.output()) is not None, 90, worker)
            found = WORKER_STARTED.search(worker.output())
            assert found is not None
            running.worker_ids[found.group(1)] = worker
        yield running
    finally:
        for process in everything:
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in everything:
            try:
                process.popen.wait(20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()


def wait_until(
    condition: Callable[[], bool], timeout: float, watched: Process | None = None
) -> float:
    """Poll ``condition`` every 20 ms; the seconds it took. Fails at ``timeout``, or at
    once if ``watched`` exits."""
    started = time.monotonic()
    while not condition():
        if watched is not None and watched.popen.poll() is not None:
            pytest.fail(f"{watched.name} exited {watched.popen.returncode}:\n{watched.output()}")
        assert time.monotonic() - started < timeout, "not within the deadline"
        time.sleep(0.02)
    return time.monotonic() - started


def bus_state(api: Process) -> str:
    """What the API's /readyz says of its bus ("redis: connected", "redis: down since...")."""
    try:
        response = httpx.get(f"{api.url}/readyz", timeout=2)
    except httpx.TransportError:
        return "unreachable"
    return str(response.json().get("bus", "")) if response.status_code == 200 else "unready"


def login(url: str, email: str, password: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Expected:
    """What an acknowledged write says a workload must be now."""

    owner_id: str
    cpu: float
    ram_gb: float
    gpu: float
    stopped: bool = False


class Ledger:
    """Every acknowledged write, from every client thread."""

    def __init__(self) -> None:
        self.workloads: dict[str, Expected] = {}
        self.users: dict[str, str] = {}  # email -> id
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def submitted(self, response: httpx.Response, owner: str) -> str:
        assert response.status_code == 201, response.text
        body = response.json()
        if owner in self.users:  # else the first admin
            assert body["owner_id"] == self.users[owner], body
        with self._lock:
            self.workloads[body["id"]] = Expected(
                body["owner_id"], body["cpu"], body["ram_gb"], body["gpu"]
            )
        return str(body["id"])


def submit(
    url: str, token: str, ledger: Ledger, owner: str, *, cpu: float, ram_gb: float, gpu: float
) -> str:
    body = {"image": "busybox", "cpu": cpu, "ram_gb": ram_gb, "gpu": gpu}
    response = httpx.post(f"{url}/api/v1/workloads", headers=bearer(token), json=body, timeout=30)
    return ledger.submitted(response, owner)


def drive_user(urls: list[str], email: str, token: str, seed: int, ledger: Ledger) -> None:
    """OPS_PER_USER mixed requests from one user, round robin over the APIs."""
    rng = random.Random(seed)
    clients = [httpx.Client(base_url=url, headers=bearer(token), timeout=30) for url in urls]
    mine: list[str] = []
    operation = "start"
    try:
        for step in range(OPS_PER_USER):
            client = clients[step % len(clients)]
            live = [w for w in mine if not ledger.workloads[w].stopped]
            operation = (
                "submit"
                if step < 4 or not live
                else rng.choice(["submit", "submit", "submit", "stop", "resize", "resize", "list"])
            )
            if operation == "submit":
                body = {
                    "image": "busybox",
                    "cpu": rng.choice([0.5, 1, 2]),
                    "ram_gb": rng.choice([1, 2, 4]),
                    "gpu": rng.choice([0, 0, 1, 2, 4]),
                }
                mine.append(ledger.submitted(client.post("/api/v1/workloads", json=body), email))
            elif operation == "stop":
                target = rng.choice(live)
                response = client.post(f"/api/v1/workloads/{target}/stop")
                assert response.status_code == 200, response.text
                ledger.workloads[target].stopped = True
            elif operation == "resize":
                target = rng.choice(live)
                change = {"cpu": rng.choice([0.5, 1, 3]), "ram_gb": rng.choice([1, 3])}
                if rng.random() < 0.3:
                    change["gpu"] = rng.choice([0, 1, 2])
                response = client.patch(f"/api/v1/workloads/{target}", json=change)
                assert response.status_code == 200, response.text
                body = response.json()
                expected = ledger.workloads[target]
                expected.cpu, expected.ram_gb, expected.gpu = (
                    body["cpu"],
                    body["ram_gb"],
                    body["gpu"],
                )
                assert (expected.cpu, expected.ram_gb) == (change["cpu"], change["ram_gb"])
            else:
                response = client.get("/api/v1/workloads", params={"limit": 500})
                assert response.status_code == 200, response.text
                listed = {w["id"] for w in response.json()["data"]}
                assert set(mine) <= listed, "an acknowledged submission is missing from the list"
    except BaseException as exc:  # reported by the test thread
        ledger.errors.append(f"{email}, {operation}: {exc!r}")
    finally:
        for client in clients:
            client.close()


def check_acknowledged(urls: list[str], admin_token: str, ledger: Ledger) -> None:
    """Every acknowledged workload, read through every API, is as its last write left it."""
    for index, (workload_id, expected) in enumerate(sorted(ledger.workloads.items())):
        url = urls[index % len(urls)]
        response = httpx.get(
            f"{url}/api/v1/workloads/{workload_id}", headers=bearer(admin_token), timeout=30
        )
        assert response.status_code == 200, f"{workload_id}: {response.text}"
        got = response.json()
        assert got["owner_id"] == expected.owner_id, got
        assert (got["cpu"], got["ram_gb"], got["gpu"]) == (
            expected.cpu,
            expected.ram_gb,
            expected.gpu,
        ), workload_id
        if expected.stopped:
            assert got["status"] == "stopped", got
        else:
            assert got["status"] in {"pending", "scheduled", "starting", "running"}, got


def check_reservations(ctx: ServiceContext) -> None:
    """Each server's counters are the sum of the reservations on it, within capacity; only
    workloads that hold resources have reservations, and as much as they ask for."""
    with ctx.db.read() as session:
        servers = list(session.scalars(select(ServerRow)))
        workloads = list(session.scalars(select(WorkloadRow)))
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        gpu_use: dict[tuple[str, int], int] = defaultdict(int)
        for w in workloads:
            if w.status not in HOLDING:
                assert not w.allocations, f"{w.id} is {w.status} and holds reservations"
                continue
            assert len(w.allocations) == w.replicas, f"{w.id}: {len(w.allocations)} replicas"
            for a in w.allocations:
                asked = (w.cpu_milli, w.ram_mib, w.storage_mib, w.gpu_milli)
                held = (a.cpu_milli, a.ram_mib, a.storage_mib, a.gpu_milli)
                assert held == asked, f"{w.id}: holds {held}, asks {asked}"
                for i, value in enumerate(held):
                    sums[a.server_id][i] += value
                for index, milli in a.gpu_allocation:
                    gpu_use[(a.server_id, index)] += milli
        for s in servers:
            counters = [s.alloc_cpu_milli, s.alloc_ram_mib, s.alloc_storage_mib, s.alloc_gpu_milli]
            assert counters == sums[s.id], f"{s.name}: counters {counters}, reserved {sums[s.id]}"
            assert s.alloc_cpu_milli <= s.cpu_milli, s.name
            assert s.alloc_ram_mib <= s.ram_mib, s.name
            assert s.alloc_gpu_milli <= s.gpu_milli, s.name
            for gpu in s.gpus:
                assert gpu.allocated_milli == gpu_use[(s.id, gpu.gpu_index)], s.name
                assert gpu.allocated_milli <= 1000, s.name


def check_nothing_done_twice(ctx: ServiceContext) -> None:
    """Every workload's events form one chain (each starts where the last ended: a second
    placement or start of the same workload would break it), and no container is twice."""
    with ctx.db.read() as session:
        events = session.scalars(
            select(WorkloadEventRow).order_by(WorkloadEventRow.workload_id, WorkloadEventRow.id)
        ).all()
        chains: dict[str, list[WorkloadEventRow]] = defaultdict(list)
        for event in events:
            chains[event.workload_id].append(event)
        for workload_id, chain in chains.items():
            assert chain[0].from_status is None, f"{workload_id}: first event {chain[0]}"
            for before, after in pairwise(chain):
                assert after.from_status == before.to_status, (
                    f"{workload_id}: {before.from_status}->{before.to_status}, then "
                    f"{after.from_status}->{after.to_status} ({after.reason})"
                )
        workloads = session.scalars(select(WorkloadRow)).all()
        for w in workloads:
            assert chains[w.id][-1].to_status == w.status, f"{w.id}: events end elsewhere"
        containers = [
            a.container_id for w in workloads for a in w.allocations if a.container_id is not None
        ]
        assert len(containers) == len(set(containers)), "a container serves two replicas"


def wait_settled(ctx: ServiceContext, timeout: float = 60) -> None:
    """Until nothing is on its way (scheduled, starting) and the statuses stop changing
    (what still waits waits for capacity)."""
    last: dict[str, str] = {}
    still_since = time.monotonic()
    deadline = time.monotonic() + timeout
    while True:
        with ctx.db.read() as session:
            rows = session.execute(select(WorkloadRow.id, WorkloadRow.status))
            now = {workload_id: status for workload_id, status in rows}
        if now != last or any(s in {"scheduled", "starting"} for s in now.values()):
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since > 2 * SCHEDULER_INTERVAL_S + 0.5:
            return
        assert time.monotonic() < deadline, "the workloads never settled"
        time.sleep(0.1)


def status_of(ctx: ServiceContext, workload_ids: list[str]) -> dict[str, str]:
    with ctx.db.read() as session:
        rows = session.execute(
            select(WorkloadRow.id, WorkloadRow.status).where(WorkloadRow.id.in_(workload_ids))
        )
        return {workload_id: status for workload_id, status in rows}


def scheduler_leases(ctx: ServiceContext) -> dict[str, str]:
    """The scheduler's lease rows, name -> holder: `scheduler` for the deployment, or one
    `scheduler:<cluster id>` per cluster (not the schedulers' membership leases)."""
    with ctx.db.read() as session:
        rows = session.execute(
            text(
                "SELECT name, holder FROM leases WHERE name = 'scheduler' "
                "OR name LIKE 'scheduler:%' ORDER BY name"
            )
        )
        return {str(name): str(holder) for name, holder in rows}


def assert_stream_within_deadline(
    stream_url: str, submit_url: str, token: str, ledger: Ledger, owner: str
) -> None:
    """A submission through one API is on another API's stream within 0.5 s."""
    stream = StreamReader(stream_url, token)
    try:
        for _ in range(3):
            started = time.monotonic()
            workload_id = submit(submit_url, token, ledger, owner, cpu=0.5, ram_gb=1, gpu=0)
            stream.wait_for(is_workload(workload_id), timeout=5)
            elapsed = time.monotonic() - started
            assert elapsed < STREAM_DEADLINE_S, f"on the other API's stream after {elapsed:.3f} s"
    finally:
        stream.close()


@pytest.fixture
def redis_of_this_test() -> Iterator[RedisServer]:
    """A Redis of its own: this test stops and restarts it."""
    server = start_or_skip(RedisServer())
    try:
        yield server
    finally:
        server.stop()


def test_three_apis_and_two_workers_lose_nothing_and_do_nothing_twice(
    tmp_path: Path, postgres_url: str, redis_of_this_test: RedisServer
) -> None:
    redis = redis_of_this_test
    # The database as an operator leaves it before starting the services: migrated, with a
    # (simulated) cluster to place on. The API processes create the first admin.
    ctx = make_context(make_settings(tmp_path / "prepare", postgres_url))
    env = {
        # What an operator writes into gpuyard.env (deploy/gpuyard.env.example).
        "GPUYARD_DATABASE_URL": postgres_url,
        "GPUYARD_REDIS_URL": redis.url,
        "GPUYARD_SECRET_KEY": secrets.token_urlsafe(48),
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **TUNING,
    }
    assert set(env) - set(TUNING) <= set(service_environment("api"))  # the example's keys
    ledger = Ledger()
    timings: dict[str, float] = {}
    try:
        with deployment(tmp_path, env) as running:
            try:
                _phases(ctx, running, redis, ledger, timings)
            except BaseException:
                print(running.logs())
                raise
    finally:
        ctx.db.dispose()
    print("measured:", {k: round(v, 3) for k, v in timings.items()})


def _phases(
    ctx: ServiceContext,
    running: Deployment,
    redis: RedisServer,
    ledger: Ledger,
    timings: dict[str, float],
) -> None:
    urls = running.urls
    admin = login(urls[0], ADMIN_EMAIL, ADMIN_PASSWORD)

    # -- 1. mixed load through all three APIs ---------------------------------------------
    passwords = {}
    for i in range(USERS):
        email, password = f"user{i}@example.com", f"password-of-user-{i}"
        created = httpx.post(
            f"{urls[i % APIS]}/api/v1/users",
            headers=bearer(admin),
            json={"email": email, "password": password, "role": "user"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        ledger.users[email] = created.json()["id"]
        passwords[email] = password
    tokens = {
        email: login(urls[i % APIS], email, pw) for i, (email, pw) in enumerate(passwords.items())
    }

    assert_stream_within_deadline(urls[2], urls[0], admin, ledger, ADMIN_EMAIL)

    threads = [
        threading.Thread(target=drive_user, args=(urls, email, token, seed, ledger))
        for seed, (email, token) in enumerate(tokens.items())
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    timings["mixed_load_s"] = time.monotonic() - started
    assert not ledger.errors, ledger.errors
    assert len(ledger.workloads) >= USERS * 4
    wait_settled(ctx)
    check_acknowledged(urls, admin, ledger)
    check_reservations(ctx)
    with ctx.db.read() as session:
        placed = session.scalar(
            text("SELECT count(*) FROM workloads WHERE status = 'running' AND gpu_milli > 0")
        )
    assert placed, "no GPU workload was placed: the load proves nothing about capacity"

    # A token revoked through one API is refused by the others on their next request.
    email0 = next(iter(passwords))
    token = login(urls[0], email0, passwords[email0])
    for url in urls[1:]:  # each API resolves it once: now in its caller cache
        assert httpx.get(f"{url}/api/v1/auth/me", headers=bearer(token)).status_code == 200
    assert httpx.post(f"{urls[0]}/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    for url in urls[1:]:
        refused = httpx.get(f"{url}/api/v1/auth/me", headers=bearer(token))
        assert refused.status_code == 401, f"{url} still takes the revoked token: {refused.text}"

    # One login budget across the APIs: 5 failures on an account from one address, spread
    # over the three (none sees more than 2), close it to that address on every API.
    email2 = list(passwords)[2]
    for url in (urls[0], urls[0], urls[1], urls[1], urls[2]):
        wrong = httpx.post(
            f"{url}/api/v1/auth/login", json={"email": email2, "password": "not-the-password"}
        )
        assert wrong.status_code == 401, wrong.text
    for url in urls:
        throttled = httpx.post(
            f"{url}/api/v1/auth/login", json={"email": email2, "password": passwords[email2]}
        )
        assert throttled.status_code == 429, f"{url}: {throttled.status_code} {throttled.text}"
        assert int(throttled.headers["Retry-After"]) > 0

    # -- 2. kill -9 of the worker that holds the scheduler lease -------------------------
    held = scheduler_leases(ctx)
    assert held, "no scheduler lease: the workers are not leasing"
    holders = set(held.values())
    assert holders <= set(running.worker_ids), f"lease holders {holders} are not the workers"
    (active_id,) = holders  # one cluster, one active scheduler
    active = running.worker_ids[active_id]
    (standby_id,) = set(running.worker_ids) - {active_id}
    ttl_s = lease_ttl(SCHEDULER_INTERVAL_S).total_seconds()
    # Work in flight at the kill: submitted just before, and more just after.
    owner = list(tokens)[1]
    before = [
        submit(urls[i % APIS], tokens[owner], ledger, owner, cpu=0.5, ram_gb=1, gpu=0)
        for i in range(6)
    ]
    killed_at = time.monotonic()
    os.kill(active.popen.pid, signal.SIGKILL)
    assert active.popen.wait(10) == -signal.SIGKILL
    after = [
        submit(urls[i % APIS], tokens[owner], ledger, owner, cpu=0.5, ram_gb=1, gpu=0)
        for i in range(6)
    ]
    wait_until(
        lambda: set(scheduler_leases(ctx).values()) == {standby_id},
        ttl_s + 30,
        running.worker_ids[standby_id],
    )
    timings["lease_takeover_s"] = time.monotonic() - killed_at
    # The lease lapses at most ttl after the dead holder's last renewal (before the kill);
    # the standby tries at its next tick, at most an interval later.
    assert timings["lease_takeover_s"] <= ttl_s + SCHEDULER_INTERVAL_S + 1.0, timings
    wait_until(lambda: set(status_of(ctx, before + after).values()) == {"running"}, 30)
    timings["in_flight_running_after_kill_s"] = time.monotonic() - killed_at
    wait_settled(ctx)
    check_acknowledged(urls, admin, ledger)
    check_reservations(ctx)
    check_nothing_done_twice(ctx)

    # -- 3. Redis stops, then comes back ---------------------------------------------------
    redis.halt()
    halted_at = time.monotonic()
    standby = running.worker_ids[standby_id]
    for api in running.apis:
        wait_until(lambda api=api: bus_state(api).startswith("redis: down"), 30, api)
    wait_until(lambda: standby.logged("bus: down; falling back to polling"), 30, standby)
    timings["bus_down_noticed_s"] = time.monotonic() - halted_at
    during = [
        submit(urls[i % APIS], tokens[owner], ledger, owner, cpu=0.5, ram_gb=1, gpu=0)
        for i in range(6)
    ]
    # Placed all the same: the standby's scheduler still ticks every interval (polling).
    timings["placed_without_redis_s"] = wait_until(
        lambda: set(status_of(ctx, during).values()) == {"running"}, 30
    )
    redis.resume()
    resumed_at = time.monotonic()
    for api in running.apis:
        wait_until(lambda api=api: bus_state(api) == "redis: connected", 30, api)
    wait_until(lambda: standby.logged("bus: connected again"), 30, standby)
    timings["back_on_bus_s"] = time.monotonic() - resumed_at
    assert_stream_within_deadline(urls[0], urls[1], admin, ledger, ADMIN_EMAIL)
    assert standby.popen.poll() is None  # alive through all of it
    wait_settled(ctx)
    check_acknowledged(urls, admin, ledger)
    check_reservations(ctx)
    check_nothing_done_twice(ctx)
    timings["workloads"] = float(len(ledger.workloads))
