"""Idle culling on a real Docker server (issue 19): a real agent over the session's
dockerd; the culling loop reads each container's cumulative CPU time through the agent
(Docker's one-shot stats) and turns two readings into a share of the container's CPU
limit. A container doing nothing (``sleep``) is warned, then stopped and removed; one
spinning its CPU is not. A window of seconds (settings, below their minimum) and the real
clock: the containers' CPU time is real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from factories.docker_fleet import Fleet, docker_fleet
from fastapi.testclient import TestClient
from support.dockerd import DockerServer

from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.containers.teardown import run_teardowns
from gpuyard.services.context import ServiceContext
from gpuyard.services.culling.loop import cull_workloads

WINDOW_S = 4
WARN_S = 2


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    settings = make_settings(
        tmp_path / "data", None, demo=False, stop_grace_period_s=0.0, idle_cull_mode="on"
    )
    # Below the minimums (model_copy does not validate), so the demo takes seconds.
    settings = settings.model_copy(
        update={"idle_cull_window_s": WINDOW_S, "idle_cull_warn_s": WARN_S}
    )
    context = make_context(settings)
    yield context
    context.db.dispose()


def _submit(api: TestClient, fleet: Fleet, dockerd: DockerServer, command: list[str]) -> str:
    body = {
        "image": dockerd.image,
        "command": command,
        "cpu": 0.1,
        "ram_gb": 0.125,
        "cluster_id": fleet.cluster_id,
    }
    response = api.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_container_doing_nothing_is_culled_and_a_busy_one_is_not(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx) as api,
    ):
        idle = _submit(api, fleet, dockerd, ["sleep", "600"])
        busy = _submit(api, fleet, dockerd, ["sh", "-c", "while :; do :; done"])
        settle(ctx)
        start_scheduled(ctx)
        for workload_id in (idle, busy):
            assert api.get(f"/api/v1/workloads/{workload_id}").json()["status"] == "running"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cull_workloads(ctx)
            if api.get(f"/api/v1/workloads/{idle}").json()["status"] == "stopped":
                break
            time.sleep(0.5)
        stopped = api.get(f"/api/v1/workloads/{idle}").json()
        assert stopped["status"] == "stopped", stopped
        assert stopped["reason_code"] == "idle"
        events = api.get(f"/api/v1/workloads/{idle}/events").json()["data"]
        reasons = [e["reason"] or "" for e in events]
        warning = next(r for r in reasons if "will be stopped at" in r)
        assert "CPU utilisation at most" in warning
        assert reasons[-1].startswith("stopped: idle for"), reasons
        assert "CPU utilisation at most" in reasons[-1]
        assert "below the threshold of 5 %" in reasons[-1]
        run_teardowns(ctx)
        assert fleet.containers(idle) == []  # the cleanup loop removed its container

        running = api.get(f"/api/v1/workloads/{busy}").json()
        assert running["status"] == "running", running
        busy_reasons = [
            e["reason"] or "" for e in api.get(f"/api/v1/workloads/{busy}/events").json()["data"]
        ]
        assert not [r for r in busy_reasons if "idle" in r], busy_reasons
        culling = api.get(f"/api/v1/workloads/{busy}/culling").json()
        assert culling["idle_since"] is None
        assert culling["seconds_left"] is None
        assert [c.status for c in fleet.containers(busy)] == ["running"]
