"""`gpuyard serve --no-loops` plus `gpuyard worker`: the API only queues, the worker
process places (the split DESIGN.md section 7 describes for scale-out); and the lease that
makes one process the active scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_context, make_settings
from factories.processes import free_port

from gpuyard.services.background import stop_loops
from gpuyard.services.loops.leases import holds_scheduler_lease
from gpuyard.services.loops.runner import LoopRunner
from gpuyard.services.scheduling.cycle import run_scheduling_cycle

pytestmark = pytest.mark.slow


def test_worker_places_what_the_loopless_api_queued(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Far longer than the test waits: only the change watch can wake the worker in time.
        "GPUYARD_SCHEDULER_INTERVAL_S": "60",
        "GPUYARD_LOCAL_DOCKER": "off",
    }
    port = free_port()
    cli = [sys.executable, "-m", "gpuyard.cli.main"]
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115
    api = subprocess.Popen(
        [*cli, "serve", "--no-loops", "--demo", "--port", str(port), "--data-dir", str(data)],
        env=env,
        stdout=log,
        stderr=log,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {_login(url, api)}"}
        created = httpx.post(
            f"{url}/api/v1/workloads", headers=headers, json={"image": "busybox", "gpu": 2}
        ).json()
        time.sleep(1.0)  # no loops in the API process: nothing places it
        assert _status(url, headers, created["id"]) == "pending"

        worker = subprocess.Popen(
            [*cli, "worker", "--data-dir", str(data)], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30  # worker start-up included
        while _status(url, headers, created["id"]) != "running":
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.2)
        # The worker's first cycle placed that one. Its next regular cycle is a minute away,
        # so a second submission runs in time only if the change watch wakes the worker.
        second = httpx.post(
            f"{url}/api/v1/workloads", headers=headers, json={"image": "busybox", "gpu": 1}
        ).json()
        deadline = time.monotonic() + 10
        while _status(url, headers, second["id"]) != "running":
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.2)
    finally:
        for proc in (api, worker):
            if proc is not None:
                proc.terminate()
                proc.wait(15)
        log.close()
    assert worker is not None
    assert worker.returncode == 0  # SIGTERM stops the loops cleanly


def _login(url: str, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gpuyard serve exited"
        try:
            response = httpx.post(
                f"{url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            return str(response.json()["access_token"])
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("gpuyard serve never answered")


def _status(url: str, headers: dict[str, str], workload_id: str) -> str:
    return str(httpx.get(f"{url}/api/v1/workloads/{workload_id}", headers=headers).json()["status"])


def test_with_the_lease_only_one_process_schedules(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None, scheduler_lease=True)
    leader, other = make_context(settings), make_context(settings)  # two "processes"
    assert holds_scheduler_lease(leader)
    assert not holds_scheduler_lease(other)
    skipped = run_scheduling_cycle(other)
    assert (skipped.considered, skipped.admitted) == (0, 0)

    stop_loops(leader, LoopRunner([]))  # a clean stop hands the lease over at once
    assert holds_scheduler_lease(other)
    assert not holds_scheduler_lease(leader)
    leader.db.dispose()
    other.db.dispose()
