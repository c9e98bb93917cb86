"""One bad item never stops a docker loop (services/loops/item_failures.py): starter, health,
reconcile and cleanup, ticked by hand over real agents on the session's dockerd.

Each test poisons one item as an older version or a bug could have (a row written
straight into the database, an agent answering like no agent would) and shows that the
loop gives it a reason, logs it once however many ticks run, and goes on with the others.
Before isolation each of these failed the whole tick, every tick. On both databases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from factories.clock import ManualClock
from factories.docker_fleet import Fleet, docker_fleet, garbage_agent
from factories.loop_failures import record_failures, status_and_reason
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from support.dockerd import DockerServer

from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.containers.teardown import run_teardowns
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.health import probe_servers
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.runtime_tables import ContainerTeardownRow
from gpuyard.store.workload_tables import WorkloadRow

_STAYS_FAILED = "failed so that the other workloads go on"
SLEEP = ["sleep", "300"]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """No demo servers; stops kill at once; a hand-moved clock that starts at the real
    time (the containers' own times are real)."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(tmp_path / "data", url, demo=False, stop_grace_period_s=0.0)
    context = make_context(settings)
    context.clock = ManualClock(datetime.now(UTC))
    yield context
    context.db.dispose()


def _clock(ctx: ServiceContext) -> ManualClock:
    assert isinstance(ctx.clock, ManualClock)
    return ctx.clock


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


def _set(ctx: ServiceContext, workload_id: str, **values: Any) -> None:
    with ctx.db.write() as session:
        session.execute(update(WorkloadRow).where(WorkloadRow.id == workload_id).values(**values))


def _set_server(ctx: ServiceContext, server_id: str, **values: Any) -> None:
    with ctx.db.write() as session:
        session.execute(update(ServerRow).where(ServerRow.id == server_id).values(**values))


def _statuses(ctx: ServiceContext, ids: list[str]) -> list[str]:
    return [status_and_reason(ctx, w)[0] for w in ids]


def test_starter_fails_replicas_it_cannot_start_and_starts_the_others(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = record_failures(monkeypatch)
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx) as api,
    ):
        ids = [_submit(api, fleet, dockerd, SLEEP) for _ in range(5)]
        good, (no_spec, bad_command, bad_ports) = ids[:2], ids[2:]
        _set(ctx, no_spec, env=["A"])  # not an object: no spec can be built from it
        _set(ctx, bad_command, command=[1])  # not text: the agent's spec refuses it
        _set(ctx, bad_ports, ports=["http"])  # not a port: no host port can be taken
        settle(ctx)
        for _ in range(3):
            start_scheduled(ctx)
        assert _statuses(ctx, ids) == ["running"] * 2 + ["failed"] * 3
        assert [len(fleet.containers(w)) for w in ids] == [1, 1, 0, 0, 0]
        expected = {
            no_spec: ("starter", "its container spec could not be built by the starter"),
            bad_command: ("starter", "its container could not be started by the starter"),
            bad_ports: ("scheduler", "the scheduler could not apply its placement"),
        }
        for workload_id, (loop, why) in expected.items():
            reason = status_and_reason(ctx, workload_id)[1]
            assert reason is not None
            assert reason.startswith(f"{why} (")
            assert reason.endswith(_STAYS_FAILED)
            assert len(failures.failures(loop, workload_id)) == 1
        assert all(len(fleet.containers(w)) == 1 for w in good)


def test_health_counts_a_broken_agent_as_missed_and_probes_the_others(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """host-b's agent answers something that is not an inventory; host-c's token is one no
    key opens. Both go offline after three misses; host-a is probed on every tick."""
    failures = record_failures(monkeypatch)
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a", "host-b", "host-c"]) as fleet,
        garbage_agent() as garbage_url,
    ):
        _set_server(ctx, fleet.servers["host-b"], agent_url=garbage_url)
        _set_server(ctx, fleet.servers["host-c"], agent_token_enc="not-a-token")
        for _ in range(4):
            _clock(ctx).advance(10)
            probe_servers(ctx)
            with ctx.db.read() as session:
                host_a = session.get(ServerRow, fleet.servers["host-a"])
                assert host_a is not None
                assert host_a.last_seen_at is not None
                assert (host_a.status, as_utc(host_a.last_seen_at)) == ("online", ctx.now())
        with ctx.db.read() as session:
            for name in ("host-b", "host-c"):
                server = session.get(ServerRow, fleet.servers[name])
                assert server is not None
                assert (server.status, server.missed_probes) == ("offline", 4)
    assert len(failures.failures("health", f"server {fleet.servers['host-b']}")) == 1


def _wait_until_exited(fleet: Fleet, workload_id: str) -> None:
    deadline = time.monotonic() + 30
    while not any(c.status == "exited" for c in fleet.containers(workload_id)):
        assert time.monotonic() < deadline, "the container did not exit"
        time.sleep(0.1)


def test_reconcile_fails_a_workload_it_cannot_rebuild_and_reconciles_the_others(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On host-a, one workload's record no longer makes a spec; host-b's agent answers
    garbage. The workload is failed (its container goes to the cleanup loop), host-b is
    skipped, and a container that exited on host-a is reconciled all the same."""
    failures = record_failures(monkeypatch)
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a", "host-b"]) as fleet,
        garbage_agent() as garbage_url,
        authed_client(ctx) as api,
    ):
        _set_server(ctx, fleet.servers["host-b"], status="draining")  # nothing placed there
        exits = _submit(api, fleet, dockerd, ["true"])
        runs, poisoned = (_submit(api, fleet, dockerd, SLEEP) for _ in range(2))
        settle(ctx)
        start_scheduled(ctx)
        assert _statuses(ctx, [exits, runs, poisoned]) == ["running"] * 3
        _wait_until_exited(fleet, exits)
        _set(ctx, poisoned, env=["A"])
        _set_server(ctx, fleet.servers["host-b"], agent_url=garbage_url)
        for _ in range(3):
            reconcile_servers(ctx)
        assert _statuses(ctx, [exits, runs, poisoned]) == ["succeeded", "running", "failed"]
        assert status_and_reason(ctx, poisoned)[1] == (
            "its container spec could not be built by the reconcile loop (ValueError); "
            + _STAYS_FAILED
        )
        with ctx.db.read() as session:
            torn_down = session.scalars(select(ContainerTeardownRow.workload_id)).all()
        assert poisoned in torn_down
    assert len(failures.failures("reconcile", poisoned)) == 1
    assert len(failures.failures("reconcile", f"server {fleet.servers['host-b']}")) == 1


def test_cleanup_retries_a_teardown_it_cannot_do_and_removes_the_others(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grace period of infinity (no JSON can carry it to the agent) is retried with
    backoff and its error recorded; the other containers are removed."""
    failures = record_failures(monkeypatch)
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx) as api,
    ):
        ids = [_submit(api, fleet, dockerd, SLEEP) for _ in range(3)]
        settle(ctx)
        start_scheduled(ctx)
        assert _statuses(ctx, ids) == ["running"] * 3
        for workload_id in ids:
            response = api.post(f"/api/v1/workloads/{workload_id}/stop")
            assert response.status_code == 200, response.text
        t = ContainerTeardownRow
        with ctx.db.write() as session:
            bad = session.scalars(select(t.id).where(t.workload_id == ids[1])).one()
            session.execute(update(t).where(t.id == bad).values(grace_s=math.inf))
        for _ in range(3):
            _clock(ctx).advance(600)  # past the longest backoff: every row is due
            run_teardowns(ctx)
        assert [len(fleet.containers(w)) for w in ids] == [0, 1, 0]
        with ctx.db.read() as session:
            row = session.get(ContainerTeardownRow, bad)
            assert row is not None
            assert (row.attempts, row.last_error) == (3, "teardown failed (ValueError)")
            assert session.scalars(select(t.id)).all() == [bad]
    assert len(failures.failures("cleanup", f"teardown {bad}")) == 1
