"""Warm pools on real agents over the session's dockerd (issue 16), loops ticked by hand:
fill (the seed's names and labels), 20 concurrent launches for 5 warm containers, refill,
recovery after ``docker rm -f`` (available and assigned: the assigned one comes back with
its files directory mounted and serving), and a warm container preempted by real work.
On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.models.containers import Container
from factories.app import (
    add_user,
    admin_caller,
    authed_client,
    make_context,
    make_settings,
    mint_token,
    settle,
)
from factories.docker_fleet import Fleet, docker_fleet
from fastapi.testclient import TestClient
from support.dockerd import DockerServer

from gpuyard.domain.pools import POOL_OWNER_ID
from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.specs import (
    PoolDefinition,
    create_pool,
    get_pool,
    reinitialise_pool,
)
from gpuyard.services.pools.tending import tend_pools
from gpuyard.services.workloads.submission import list_workload_events
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import WorkloadRow

#: busybox's httpd serves each warm container's files directory on its port.
SERVE = ["httpd", "-f", "-p", "8080", "-h", "/workspace"]
CPU = 0.1
RAM_GB = 0.0625


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(tmp_path / "data", url, demo=False, stop_grace_period_s=0.0)
    context = make_context(settings)
    yield context
    context.db.dispose()


def _free_range(size: int = 40) -> tuple[int, int]:
    """``size`` consecutive ports nothing on 127.0.0.1 listens on: each test its own, so
    a port another test's container held a moment ago is never in the way."""
    rng = random.Random()
    for _attempt in range(50):
        first = rng.randrange(20000, 60000 - size)
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + size):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first, first + size - 1
    raise RuntimeError("no free port range")


def _pool(ctx: ServiceContext, fleet: Fleet, dockerd: DockerServer, size: int, **kw: Any) -> str:
    port_min, port_max = _free_range()
    values: dict[str, Any] = {
        "name": "web",
        "image_type": "busybox",
        "image": dockerd.image,
        "server_id": fleet.servers["host-a"],
        "cluster_id": None,
        "target_size": size,
        "port_min": port_min,
        "port_max": port_max,
        "container_port": 8080,
        "cpu": CPU,
        "ram_gb": RAM_GB,
        "storage_gb": 0,
        "command": SERVE,
        **kw,
    }
    return create_pool(ctx, admin_caller(ctx), PoolDefinition(**values)).spec.id


def _fill(ctx: ServiceContext) -> None:
    """Pool loop, scheduler and starter until nothing moves (a few rounds)."""
    for _ in range(4):
        tend_pools(ctx)
        settle(ctx)
        start_scheduled(ctx)


def _pool_containers(fleet: Fleet) -> list[Container]:
    found: list[Container] = fleet.docker.containers.list(
        all=True, filters={"label": "pool=true"}, ignore_removed=True
    )
    return [c for c in found if c.labels.get("gpuyard.agent") in fleet.agent_names]


def _observed_labels(ctx: ServiceContext, server: str = "host-a") -> dict[str, dict[str, str]]:
    """workload id -> labels as the agent reports them (its overlay over Docker's)."""
    runtime = ctx.runtimes.for_kind("docker")
    return {c.workload_id: dict(c.labels) for c in runtime.containers(server)}


def _launch(api: TestClient, dockerd: DockerServer, **body: Any) -> dict[str, Any]:
    payload = {"image": dockerd.image, "cpu": CPU, "ram_gb": RAM_GB, **body}
    response = api.post("/api/v1/workloads", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _get(url: str) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_pool_fills_with_named_labelled_warm_containers(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet:
        pool_id = _pool(ctx, fleet, dockerd, 3)
        _fill(ctx)
        status = get_pool(ctx, pool_id)
        assert status.available == 3
        containers = _pool_containers(fleet)
        assert len(containers) == 3
        by_index = {int(c.labels["pool_index"]): c for c in containers}
        assert sorted(by_index) == [0, 1, 2]
        for member in status.members:
            container = by_index[member.pool_index]
            assert member.host_port is not None
            assert status.spec.port_min <= member.host_port <= status.spec.port_max
            assert container.name == (
                f"pool_busybox_{member.pool_index}_{member.host_port}_{member.workload_id[:8]}"
            )
            assert container.status == "running"
            assert container.labels["pool"] == "true"
            assert container.labels["type"] == "busybox"
            assert container.labels["status"] == "available"
            assert container.labels["user_id"] == ""
            assert member.owner_id == POOL_OWNER_ID
        tend_pools(ctx)  # at its target: nothing more
        assert len(get_pool(ctx, pool_id).members) == 3


def test_two_pools_of_one_type_on_one_server_without_ports_do_not_clash(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    """Same type, same server, no container port: both pools' index 0 would be named
    ``pool_busybox_0_0``; the workload id in the name keeps them apart, and a pool's
    replacement after a reinitialise never waits on its predecessor's name."""
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet:
        sleep = ["sleep", "3600"]
        first = _pool(ctx, fleet, dockerd, 1, container_port=None, command=sleep)
        second = _pool(ctx, fleet, dockerd, 1, name="web-2", container_port=None, command=sleep)
        _fill(ctx)
        for pool_id in (first, second):
            status = get_pool(ctx, pool_id)
            assert status.available == 1, status
            assert status.failures is None
        names = sorted(c.name for c in _pool_containers(fleet))
        assert len(names) == 2
        assert all(name.startswith("pool_busybox_0_0_") for name in names)
        reinitialise_pool(ctx, admin_caller(ctx), first)
        _fill(ctx)
        assert get_pool(ctx, first).available == 1
        assert get_pool(ctx, first).failures is None


def test_a_claim_answers_201_whatever_the_relabel_after_its_commit_meets(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    """The claim commits, then the relabel fails: first the container was removed
    meanwhile (the agent's 404), then the server has no agent record any more (NotFound
    before any request). Each is logged, never the launch's answer."""
    user_id = add_user(ctx, "cid@example.com", "pw-cid-123456")
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx, mint_token(ctx, user_id)) as api,
    ):
        _pool(ctx, fleet, dockerd, 2)
        _fill(ctx)
        gone = _pool_containers(fleet)[0]
        gone.remove(force=True)
        claimed = {_launch(api, dockerd)["id"], _launch(api, dockerd)["id"]}
        assert gone.labels["gpuyard.workload"] in claimed
        _fill(ctx)
        with ctx.db.write() as session:
            server = session.get(ServerRow, fleet.servers["host-a"])
            assert server is not None
            server.agent_url = None
        answer = _launch(api, dockerd)
        assert answer["from_pool"] is True
        assert answer["owner_id"] == user_id


def test_twenty_concurrent_launches_take_five_warm_containers_once_each_then_refill(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    user_id = add_user(ctx, "ann@example.com", "pw-ann-123456")
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx, mint_token(ctx, user_id)) as api,
    ):
        pool_id = _pool(ctx, fleet, dockerd, 5)
        _fill(ctx)
        warm_before = {m.workload_id for m in get_pool(ctx, pool_id).members}
        assert len(warm_before) == 5

        with ThreadPoolExecutor(20) as threads:
            answers = list(threads.map(lambda _i: _launch(api, dockerd), range(20)))

        from_pool = [a for a in answers if a["from_pool"]]
        cold = [a for a in answers if not a["from_pool"]]
        assert len(from_pool) == 5
        assert {a["id"] for a in from_pool} == warm_before  # each warm one given once
        assert all(a["status"] == "running" for a in from_pool)
        assert all(a["owner_id"] == user_id for a in from_pool)
        assert len(cold) == 15
        assert all(a["status"] == "pending" for a in cold)
        labels = _observed_labels(ctx)
        for answer in from_pool:  # relabelled on the host (the agent's overlay)
            assert labels[answer["id"]]["status"] == "assigned"
            assert labels[answer["id"]]["user_id"] == user_id

        _fill(ctx)  # the pool refills to 5 available; the 5 assigned stay
        status = get_pool(ctx, pool_id)
        assert status.available == 5
        assert status.assigned == 5
        assert len({m.pool_index for m in status.members}) == 10
        assert len(_pool_containers(fleet)) == 10


def test_recovery_after_docker_rm_of_an_available_and_an_assigned_container(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    user_id = add_user(ctx, "bob@example.com", "pw-bob-123456")
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx, mint_token(ctx, user_id)) as api,
    ):
        pool_id = _pool(ctx, fleet, dockerd, 2)
        _fill(ctx)
        assigned = _launch(api, dockerd, name="site")
        assert assigned["from_pool"] is True
        host_port = assigned["ports"][0]["host_port"]
        upload = api.put(
            f"/api/v1/workloads/{assigned['id']}/files/index.html", content=b"<h1>hello</h1>"
        )
        assert upload.status_code in (200, 201), upload.text
        assert _get(f"http://127.0.0.1:{host_port}/index.html").text == "<h1>hello</h1>"
        available = next(
            m for m in get_pool(ctx, pool_id).members if m.workload_id != assigned["id"]
        )
        old = {c.labels["gpuyard.workload"]: c.id for c in _pool_containers(fleet)}

        for container in _pool_containers(fleet):
            container.remove(force=True)  # docker rm -f, both
        reconcile_servers(ctx)  # one reconcile tick

        new = {c.labels["gpuyard.workload"]: c for c in _pool_containers(fleet)}
        assert set(new) == {assigned["id"], available.workload_id}
        for workload_id, container in new.items():
            assert container.id != old[workload_id]
            assert container.status == "running"
        recreated = new[assigned["id"]]
        assert recreated.labels["status"] == "assigned"
        assert recreated.labels["user_id"] == user_id
        assert recreated.name == (
            f"pool_busybox_{recreated.labels['pool_index']}_{host_port}_{assigned['id'][:8]}"
        )
        # Its files directory is mounted again: the page it served is served again.
        assert _get(f"http://127.0.0.1:{host_port}/index.html").text == "<h1>hello</h1>"
        events, _count = list_workload_events(ctx, admin_caller(ctx), assigned["id"], 100, 0)
        assert any("recreated from its recorded spec" in (e.reason or "") for e in events)
        assert new[available.workload_id].labels["status"] == "available"
        with ctx.db.read() as session:
            row = session.get(WorkloadRow, assigned["id"])
            assert row is not None
            assert row.status == "running"


def test_real_work_preempts_a_warm_container_which_is_not_requeued(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    with (
        docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as fleet,
        authed_client(ctx) as api,
    ):
        with ctx.db.read() as session:
            from gpuyard.store.fleet_tables import ServerRow

            server = session.get(ServerRow, fleet.servers["host-a"])
            assert server is not None
            cores = server.cpu_milli / 1000
        # Two warm containers of a quarter of the host each; then work needing 70 % of it.
        pool_id = _pool(ctx, fleet, dockerd, 2, cpu=round(cores / 4, 1))
        _fill(ctx)
        warm = [m.workload_id for m in get_pool(ctx, pool_id).members]
        assert len(_pool_containers(fleet)) == 2
        work = _launch(
            api,
            dockerd,
            command=["sleep", "300"],
            cpu=round(cores * 0.7, 1),
            priority=1,
            cluster_id=fleet.cluster_id,
        )
        settle(ctx)
        for _ in range(3):
            start_scheduled(ctx)
        statuses = {}
        with ctx.db.read() as session:
            for workload_id in warm:
                row = session.get(WorkloadRow, workload_id)
                assert row is not None
                statuses[workload_id] = row.status
            placed = session.get(WorkloadRow, work["id"])
            assert placed is not None
            assert placed.status == "running"
        assert sorted(statuses.values()) == ["running", "stopped"]
        victim = next(w for w, s in statuses.items() if s == "stopped")
        events, _count = list_workload_events(ctx, admin_caller(ctx), victim, 100, 0)
        assert [e.to_status for e in events][-2:] == ["preempted", "stopped"]
        _fill(ctx)  # its replacement waits: it may evict no one
        status = get_pool(ctx, pool_id)
        assert status.available == 1
        assert status.warming == 1
