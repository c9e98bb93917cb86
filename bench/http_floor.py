"""The HTTP floor: what a do-nothing FastAPI endpoint serves on this machine.

S1's end-to-end target asks for hundreds of submissions per second over HTTP. This app
takes the same request body (gpuyard's own ``WorkloadCreate``) and answers the same
``WorkloadPublic`` shape, under the same uvicorn, with no authentication, no database and
no scheduler. The same clients post to it in the same run, so its rate is the
ceiling any FastAPI server could reach with that client on this machine, and gpuyard's rate
can be read against it (a baseline, labelled as such; it is not gpuyard).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, status

from bench.serve import is_ready, wait_until
from gpuyard.api.schemas.workloads import WorkloadCreate, WorkloadPublic

app = FastAPI()
_ids = itertools.count()


@app.post("/api/v1/workloads", response_model=WorkloadPublic, status_code=status.HTTP_201_CREATED)
def create_workload(body: WorkloadCreate) -> WorkloadPublic:
    now = datetime.now(UTC)
    return WorkloadPublic(
        id=f"{next(_ids):032x}", name=body.name or "workload", owner="floor", owner_id="floor",
        team_id=body.team_id, cluster_id=body.cluster_id, status="pending",
        reason="waiting for the scheduler", reason_code=None, image=body.image or "",
        command=body.command, env=body.env, plain_env=body.plain_env, ports=[],
        cpu=body.cpu, ram_gb=body.ram_gb,
        storage_gb=body.storage_gb, gpu=body.gpu, gpu_model=body.gpu_model,
        priority=body.priority, preemptible=body.preemptible, replicas=body.replicas,
        gang=body.gang, node_selector=body.node_selector, duration_s=body.duration_s,
        files_path=body.files_path or "/workspace",
        server_id=None, server_name=None, gpu_indices=[], placements=[], preemption_count=0,
        created_at=now, updated_at=now, started_at=None, finished_at=None,
    )  # fmt: skip


@app.get("/readyz")
def ready() -> dict[str, str]:
    return {"status": "ready"}


@contextmanager
def floor_server(port: int) -> Iterator[str]:
    """Serve :data:`app` with uvicorn (as ``gpuyard serve`` does) on 127.0.0.1."""
    args = [sys.executable, "-m", "uvicorn", "bench.http_floor:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: is_ready(url), proc, "the HTTP floor server", lambda: "")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
