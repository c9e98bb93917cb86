"""`gpuyard worker` with GPUYARD_WORKER_METRICS_PORT: its loops' counters (the scheduler's
placements live in the worker, not in any API process) scraped from its own /metrics,
with the scrapers' token; GPUYARD_METRICS_FLEET=false leaves the fleet's gauges out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, admin_caller, make_context, make_settings
from factories.metrics import parse_samples, value
from factories.processes import free_port
from prometheus_client.samples import Sample

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.workload_tables import WorkloadRow

pytestmark = pytest.mark.slow
TOKEN = "worker-scraper-" + "t0k" * 8


def test_the_worker_exports_its_own_placements(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ctx = make_context(make_settings(data, None))  # the admin and the demo cluster
    caller = admin_caller(ctx)
    workload = create_workload(ctx, caller, WorkloadCreate(image="busybox", gpu=2))
    port = free_port()
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_LOCAL_DOCKER": "off",
        "GPUYARD_METRICS_TOKEN": TOKEN,
        "GPUYARD_WORKER_METRICS_PORT": str(port),
        "GPUYARD_METRICS_FLEET": "false",
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "gpuyard.cli.main", "worker", "--data-dir", str(data)],
        env=env,
        stdout=log,
        stderr=log,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        samples: dict[str, list[Sample]] = {}
        while time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            assert response.status_code == 200, response.text
            samples = parse_samples(response.text)
            if value(samples, "gpuyard_scheduler_placements_total") >= 1:
                break
            time.sleep(0.2)
        assert value(samples, "gpuyard_scheduler_placements_total") == 1
        assert "gpuyard_gpu_allocated_ratio" not in samples  # the fleet: from another process
        anonymous = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert anonymous.status_code == 401
    finally:
        worker.terminate()
        worker.wait(15)
        log.close()
    assert worker.returncode == 0
    with ctx.db.read() as session:
        placed = session.get(WorkloadRow, workload.id)
        assert placed is not None
        assert placed.status == "running"
    ctx.db.dispose()
