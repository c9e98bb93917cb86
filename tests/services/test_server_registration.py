"""Registering a server: the runtime of the cluster's kind decides which fields the body
must give and which it refuses; every refusal is a 422 naming the field and writes nothing.

Docker servers here have no agent: every case is refused before (or when) the agent is
asked, so no dockerd is needed (tests/integration/test_docker_runtime.py registers real
ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import admin_caller, make_context, make_settings
from sqlalchemy import func, select

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.servers import GpuSpec, ServerRegistration, register_server
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.fleet_tables import ClusterRow, ServerRow

URL, TOKEN = "http://127.0.0.1:9", "t" * 32


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """A context without the demo cluster, with one cluster of each kind, named by kind."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    ctx = make_context(make_settings(tmp_path / "data", url, demo=False))
    caller = admin_caller(ctx)
    for kind in ClusterKind:
        create_cluster(ctx, caller, kind.value, kind)
    yield ctx
    ctx.db.dispose()


def _cluster_id(ctx: ServiceContext, kind: ClusterKind) -> str:
    with ctx.db.read() as session:
        return session.scalars(select(ClusterRow.id).where(ClusterRow.kind == kind.value)).one()


def _written(ctx: ServiceContext) -> tuple[int, int]:
    with ctx.db.read() as session:
        servers = session.scalar(select(func.count()).select_from(ServerRow)) or 0
        creates = session.scalar(
            select(func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.action == "server.create")
        )
    return servers, creates or 0


CASES: list[tuple[str, ClusterKind, dict[str, Any], str, str]] = [
    (
        "docker: declared cpu",
        ClusterKind.DOCKER,
        {"cpu": 4, "ram_gb": 8, "agent_url": URL, "agent_token": TOKEN},
        "cpu",
        "docker servers report their capacity through the agent",
    ),
    (
        "docker: declared ram",
        ClusterKind.DOCKER,
        {"ram_gb": 8, "agent_url": URL, "agent_token": TOKEN},
        "ram_gb",
        "docker servers report their capacity through the agent",
    ),
    (
        "docker: declared gpus",
        ClusterKind.DOCKER,
        {"gpus": [GpuSpec("A100", 80)], "agent_url": URL, "agent_token": TOKEN},
        "gpus",
        "docker servers report their GPUs",
    ),
    (
        "docker: no url",
        ClusterKind.DOCKER,
        {"agent_token": TOKEN},
        "agent_url",
        "required for a docker server",
    ),
    (
        "docker: no token",
        ClusterKind.DOCKER,
        {"agent_url": URL},
        "agent_token",
        "required for a docker server",
    ),
    (
        "docker: empty token",
        ClusterKind.DOCKER,
        {"agent_url": URL, "agent_token": ""},
        "agent_token",
        "required for a docker server",
    ),
    (
        "docker: bad host ports",
        ClusterKind.DOCKER,
        {"agent_url": URL, "agent_token": TOKEN, "host_ports": "9-1"},
        "host_ports",
        "",
    ),
    (
        "docker: not an http url",
        ClusterKind.DOCKER,
        {"agent_url": "ftp://127.0.0.1:9", "agent_token": TOKEN},
        "agent_url",
        "must be an http:// or https:// URL",
    ),
    (
        "docker: nobody listens",
        ClusterKind.DOCKER,
        {"agent_url": URL, "agent_token": TOKEN},
        "agent_url",
        f"the agent does not answer at {URL}",
    ),
    (
        "simulated: agent fields",
        ClusterKind.SIMULATED,
        {"agent_url": URL, "agent_token": TOKEN},
        "agent_url",
        "cluster 'simulated' is a simulated cluster; agent_url, agent_token and "
        "agent_tls_cert are for docker clusters",
    ),
    (
        "simulated: host ports",
        ClusterKind.SIMULATED,
        {"cpu": 4, "ram_gb": 8, "host_ports": "30000-30010"},
        "host_ports",
        "only docker servers publish ports",
    ),
    ("simulated: no cpu", ClusterKind.SIMULATED, {"ram_gb": 8}, "cpu", "field required"),
    ("simulated: no ram", ClusterKind.SIMULATED, {"cpu": 4}, "ram_gb", "field required"),
    (
        "kubernetes: declared capacity",
        ClusterKind.KUBERNETES,
        {"cpu": 4, "ram_gb": 8},
        "cluster_id",
        "nodes come from the cluster: a kubernetes cluster's servers are its nodes",
    ),
    (
        "kubernetes: agent fields",
        ClusterKind.KUBERNETES,
        {"agent_url": URL, "agent_token": TOKEN},
        "agent_url",
        "cluster 'kubernetes' is a kubernetes cluster; agent_url, agent_token and "
        "agent_tls_cert are for docker clusters",
    ),
]


@pytest.mark.parametrize(
    ("kind", "fields", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_registration_of_the_wrong_shape_names_its_field_and_writes_nothing(
    ctx: ServiceContext, kind: ClusterKind, fields: dict[str, Any], field: str, message: str
) -> None:
    before = _written(ctx)
    spec = ServerRegistration(name="new-1", cluster_id=_cluster_id(ctx, kind), **fields)

    with pytest.raises(InvalidInput) as refused:
        register_server(ctx, admin_caller(ctx), spec)

    assert [e.field for e in refused.value.errors] == [field]
    assert refused.value.errors[0].message.startswith(message)
    assert _written(ctx) == before


def test_an_unknown_cluster_is_named(ctx: ServiceContext) -> None:
    spec = ServerRegistration(name="new-1", cluster_id="nope", agent_url=URL, agent_token=TOKEN)

    with pytest.raises(InvalidInput) as refused:
        register_server(ctx, admin_caller(ctx), spec)

    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("cluster_id", "cluster 'nope' does not exist")
    ]


def test_a_simulated_server_declares_its_capacity(ctx: ServiceContext) -> None:
    cluster_id = _cluster_id(ctx, ClusterKind.SIMULATED)
    spec = ServerRegistration(
        name="sim-9", cluster_id=cluster_id, cpu=4, ram_gb=8, gpus=[GpuSpec("A100", 80)]
    )

    server = register_server(ctx, admin_caller(ctx), spec)

    assert (server.name, server.cluster_id, server.agent_url) == ("sim-9", cluster_id, None)
    assert server.capacity.cpu_milli == 4000
    assert [(g.index, g.model, g.uuid) for g in server.gpus] == [(0, "A100", "GPU-sim-sim-9-0")]
    assert _written(ctx) == (1, 1)
