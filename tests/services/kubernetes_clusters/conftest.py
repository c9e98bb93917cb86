"""Fixtures of the kubernetes service tests, against the fake API server (tests/kube/, a
test double: not Kubernetes): a service context (``ctx``: SQLite, real time;
``clock_ctx``: SQLite and PostgreSQL, a manual clock; neither with the demo cluster), an
API client on ``ctx`` (a module whose tests run on the clock defines ``ctx`` as
``clock_ctx``), a cluster registered from the fake's kubeconfig, and a GPU workload whose
pod runs on it. The lookups the tests repeat are in ``kube.workloads``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from factories.clock import ManualClock
from fastapi.testclient import TestClient
from kube.conftest import fake_apiserver, kubeconfig  # noqa: F401 (fixtures)
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE, NODE, workload

from gpuyard.domain.kube_names import pod_name
from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.kube_nodes import sync_kube_nodes


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    """A context on SQLite without the demo cluster, in real time (1 s stop grace)."""
    settings = make_settings(tmp_path / "data", None, demo=False, stop_grace_period_s=1.0)
    ctx = make_context(settings)
    yield ctx
    ctx.kube_clients.close()
    ctx.db.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def clock_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """A context on each database without the demo cluster, on a manual clock."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    ctx = make_context(make_settings(tmp_path / "data", url, demo=False))
    ctx.clock = ManualClock()
    yield ctx
    ctx.kube_clients.close()
    ctx.db.dispose()


@pytest.fixture
def api(ctx: ServiceContext) -> Iterator[TestClient]:
    """The first admin's API client on ``ctx`` (a module may define ``ctx`` its own way)."""
    with authed_client(ctx) as client:
        yield client


@pytest.fixture
def kube_cluster(api: TestClient, kubeconfig: Path) -> str:  # noqa: F811 (the fixture)
    """The id of a kubernetes cluster registered through the API from the fake's kubeconfig."""
    body = {"name": "k8s", "kind": "kubernetes", "kubeconfig": kubeconfig.read_text()}
    response = api.post("/api/v1/clusters", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def running(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,  # noqa: F811 (the fixture)
) -> str:
    """The id of a GPU workload whose pod runs on the fake cluster's one node."""
    fake_apiserver.add_node(NODE, gpus=4)
    sync_kube_nodes(ctx)
    body = {"name": "train", "image": "x", "gpu": 1, "cpu": 1, "ram_gb": 4}
    response = api.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    settle(ctx)
    assert start_scheduled(ctx) == 1
    workload_id = str(response.json()["id"])
    fake_apiserver.kubelet_run(NAMESPACE, pod_name(workload_id, 0))
    reconcile_servers(ctx)
    assert workload(api, workload_id)["status"] == "running"
    return workload_id
