"""Host cleanup of a docker server through the whole stack: the API (and the scheduled
loop's tick), the control plane's agent client, a real agent over the session's dockerd.
A leftover stopped container and files directory of a workload gpuyard no longer has go;
a placed workload's stopped container and files stay (the database still holds it there),
as do containers gpuyard did not create; a dry run frees what the real run then frees.
On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import (
    admin_caller,
    authed_client,
    make_context,
    make_settings,
    mint_token,
    settle,
)
from factories.docker_fleet import Fleet, docker_fleet
from factories.live import served
from fastapi.testclient import TestClient
from support.dockerd import DockerServer
from typer.testing import CliRunner

from gpuyard.agent.models import LABEL_AGENT, LABEL_REPLICA, LABEL_WORKLOAD
from gpuyard.api.app import create_app
from gpuyard.cli import server_commands
from gpuyard.cli.main import app as cli_app
from gpuyard.services.background import build_loops
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.host_cleanup import clean_servers


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(
        tmp_path / "data", url, demo=False, host_cleanup_retention_s=0.0, orphan_grace_s=3600
    )
    context = make_context(settings)
    yield context
    context.db.dispose()


@pytest.fixture
def fleet(ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path) -> Iterator[Fleet]:
    with docker_fleet(ctx, dockerd, tmp_path / "agents", ["host-a"]) as made:
        yield made


@pytest.fixture
def admin(ctx: ServiceContext) -> Iterator[TestClient]:
    with authed_client(ctx) as client:
        yield client


def leftover(fleet: Fleet, image: str, base: Path, size: int) -> str:
    """A stopped container of a workload gpuyard does not know, with a files directory
    of ``size`` bytes: what an agent keeps after the control plane forgot a workload."""
    workload_id = f"ghost{uuid.uuid4().hex[:8]}"
    agent = fleet.agent_names[0]
    labels = {LABEL_AGENT: agent, LABEL_WORKLOAD: workload_id, LABEL_REPLICA: "0"}
    container = fleet.docker.containers.run(image, ["true"], labels=labels, detach=True)
    container.wait(timeout=20)
    files = base / agent / "workloads" / workload_id / "files"
    files.mkdir(parents=True)
    (files / "out.bin").write_bytes(b"z" * size)
    return workload_id


def _running_workload(admin: TestClient, ctx: ServiceContext, image: str) -> str:
    body = {"name": "keep-me", "image": image, "command": ["sleep", "300"], "cpu": 0.1,
            "ram_gb": 0.0625}  # fmt: skip
    response = admin.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    settle(ctx)
    assert start_scheduled(ctx) == 1
    return str(response.json()["id"])


def _cleanup(admin: TestClient, server_id: str, dry_run: bool) -> dict[str, object]:
    response = admin.post(f"/api/v1/servers/{server_id}/cleanup", json={"dry_run": dry_run})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_cleanup_through_the_api_removes_only_what_gpuyard_left_behind(
    ctx: ServiceContext, fleet: Fleet, admin: TestClient, dockerd: DockerServer, tmp_path: Path
) -> None:
    server_id = fleet.servers["host-a"]
    ghost = leftover(fleet, dockerd.image, tmp_path / "agents", 50_000)
    placed = _running_workload(admin, ctx, dockerd.image)
    [placed_container] = fleet.containers(placed)
    placed_container.stop(timeout=0)  # stopped, but its workload is still placed here
    foreign = fleet.docker.containers.run(dockerd.image, ["true"], detach=True)
    foreign.wait(timeout=20)
    try:
        plan = _cleanup(admin, server_id, dry_run=True)
        items = plan["items"]
        assert isinstance(items, list)
        assert {(i["kind"], i["id"]) for i in items} == {
            ("container", fleet.containers(ghost)[0].id),
            ("files", ghost),
        }
        assert plan["total_bytes"] == sum(i["size_bytes"] for i in items)
        assert plan["total_bytes"] >= 50_000
        assert len(fleet.containers(ghost)) == 1  # a dry run removes nothing

        done = _cleanup(admin, server_id, dry_run=False)
        assert (done["removed"], done["failed"], done["skipped"]) == (2, 0, 0)
        assert done["total_bytes"] == plan["total_bytes"]
        assert fleet.containers(ghost) == []
        assert not (tmp_path / "agents" / fleet.agent_names[0] / "workloads" / ghost).exists()
        # What stays: the placed workload's container and files, the foreign container.
        assert [c.id for c in fleet.containers(placed)] == [placed_container.id]
        assert (tmp_path / "agents" / fleet.agent_names[0] / "workloads" / placed).exists()
        foreign.reload()
        assert foreign.status == "exited"

        events = admin.get(f"/api/v1/servers/{server_id}/events").json()["data"]
        [event] = [e for e in events if "cleanup" in e["details"]]
        assert event["reason"] == f"cleanup removed 2 item(s), freed {done['total_bytes']} bytes"
        assert event["details"]["cleanup"]["freed_bytes"] == done["total_bytes"]
        assert {i["kind"] for i in event["details"]["cleanup"]["items"]} == {"container", "files"}
    finally:
        foreign.remove(force=True)


def test_the_scheduled_tick_cleans_every_docker_server_and_records_only_real_work(
    ctx: ServiceContext, fleet: Fleet, admin: TestClient, dockerd: DockerServer, tmp_path: Path
) -> None:
    server_id = fleet.servers["host-a"]
    ghost = leftover(fleet, dockerd.image, tmp_path / "agents", 1000)
    assert clean_servers(ctx) == 2  # the container and its files
    assert fleet.containers(ghost) == []
    assert clean_servers(ctx) == 0
    events = admin.get(f"/api/v1/servers/{server_id}/events").json()["data"]
    cleanups = [e for e in events if "cleanup" in e["details"]]
    assert len(cleanups) == 1  # an empty tick records nothing
    assert cleanups[0]["details"]["cleanup"]["removed"] == 2


def test_the_cli_shows_the_items_and_the_space_freed(
    ctx: ServiceContext,
    fleet: Fleet,
    dockerd: DockerServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ghost = leftover(fleet, dockerd.image, tmp_path / "agents", 3 * 1024 * 1024)
    monkeypatch.setattr(server_commands.console, "width", 200)  # whole table cells
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin_caller(ctx).user_id))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        listed = runner.invoke(cli_app, ["server", "cleanup", "host-a", "--dry-run"])
        assert listed.exit_code == 0, listed.output
        assert "planned" in listed.output
        assert ghost in listed.output
        assert "3.0 MiB" in listed.output
        assert "dry run: 2 item(s)" in listed.output
        assert len(fleet.containers(ghost)) == 1
        done = runner.invoke(cli_app, ["server", "cleanup", "host-a"])
        assert done.exit_code == 0, done.output
        assert "removed 2 item(s), freed 3.0 MiB; 0 failed, 0 skipped" in done.output
        assert fleet.containers(ghost) == []
        missing = runner.invoke(cli_app, ["server", "cleanup", "nowhere"])
        assert missing.exit_code == 1
        assert "no server" in missing.output


def test_the_loop_is_off_by_default_and_leased_when_on(tmp_path: Path) -> None:
    off = make_context(make_settings(tmp_path / "off", None, demo=False))
    on = make_context(
        make_settings(tmp_path / "on", None, demo=False, host_cleanup_interval_s=3600.0)
    )
    try:
        assert "host-cleanup" not in [loop.name for loop in build_loops(off)]
        [loop] = [loop for loop in build_loops(on) if loop.name == "host-cleanup"]
        assert (loop.interval_s, loop.lease) == (3600.0, "host-cleanup")
        assert "cleanup" in [loop.name for loop in build_loops(on)]  # the teardowns' own
        assert loop.tick(None) == 0  # no docker server: nothing to clean (no fence: unleased)
    finally:
        off.db.dispose()
        on.db.dispose()
