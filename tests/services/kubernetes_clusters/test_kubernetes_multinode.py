"""A workload whose replicas are pods on several nodes, against the fake API server
(tests/kube/, a test double: not Kubernetes): the reconcile loop looks at one node at a
time, yet the workload goes ``running`` only when the pods on every node run, and
``succeeded`` only when every node's pods exited 0; a replica on node B is never node
A's vanished pod (recreated) or orphan (deleted), even with no orphan grace at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import make_context, make_settings, settle
from fastapi.testclient import TestClient
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE, workload

from gpuyard.domain.kube_names import pod_name
from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.kube_nodes import sync_kube_nodes

NODES = ("node-a", "node-b")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """Each database, in real time: a pod's age (for the orphan grace) is the fake's
    real creation time against the context's clock."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    settings = make_settings(tmp_path / "data", url, demo=False, stop_grace_period_s=1.0)
    ctx = make_context(settings.model_copy(update={"orphan_grace_s": 0.0}))
    yield ctx
    ctx.kube_clients.close()
    ctx.db.dispose()


@pytest.fixture
def spread(
    ctx: ServiceContext, api: TestClient, kube_cluster: str, fake_apiserver: FakeApiServer
) -> tuple[str, dict[str, str]]:
    """A 2-replica GPU workload on two 1-GPU nodes (so one replica per node), its pods
    created: (its id, {node: its pod there}). No orphan grace at all (``ctx``): a pod
    taken for an orphan would be deleted at once."""
    for node in NODES:
        fake_apiserver.add_node(node, gpus=1)
    sync_kube_nodes(ctx)
    body = {"name": "ddp", "image": "x", "gpu": 1, "cpu": 1, "ram_gb": 2, "replicas": 2}
    response = api.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    settle(ctx)
    assert start_scheduled(ctx) == 2
    workload_id = str(response.json()["id"])
    pods = {}
    for replica in (0, 1):
        name = pod_name(workload_id, replica)
        pods[fake_apiserver.get("pods", name, NAMESPACE)["spec"]["nodeName"]] = name
    assert sorted(pods) == list(NODES)  # one pod on each node
    return workload_id, pods


def uids(fake: FakeApiServer, pods: dict[str, str]) -> dict[str, str]:
    """Each pod's uid (a pod deleted and created again gets a new one)."""
    found = {}
    for node, name in pods.items():
        pod = fake.get("pods", name, NAMESPACE)
        assert "deletionTimestamp" not in pod["metadata"], f"{name} is being deleted"
        found[node] = pod["metadata"]["uid"]
    return found


@pytest.mark.parametrize("first", NODES, ids=["node A's pod first", "node B's pod first"])
def test_running_only_when_the_pods_on_every_node_run(
    ctx: ServiceContext,
    api: TestClient,
    fake_apiserver: FakeApiServer,
    spread: tuple[str, dict[str, str]],
    first: str,
) -> None:
    workload_id, pods = spread
    created = uids(fake_apiserver, pods)
    [second] = [node for node in NODES if node != first]

    fake_apiserver.kubelet_run(NAMESPACE, pods[first])
    for _ in range(2):  # every node reconciled, twice: nothing changes its mind
        reconcile_servers(ctx)

    assert workload(api, workload_id)["status"] == "starting"
    assert uids(fake_apiserver, pods) == created  # neither recreated nor deleted as orphan

    fake_apiserver.kubelet_run(NAMESPACE, pods[second])
    reconcile_servers(ctx)

    found = workload(api, workload_id)
    assert found["status"] == "running"
    assert uids(fake_apiserver, pods) == created
    events = api.get(f"/api/v1/workloads/{workload_id}/events").json()["data"]
    assert not [e for e in events if "recreated" in (e["reason"] or "")]


def test_succeeded_only_when_every_nodes_pods_exited_0(
    ctx: ServiceContext,
    api: TestClient,
    fake_apiserver: FakeApiServer,
    spread: tuple[str, dict[str, str]],
) -> None:
    workload_id, pods = spread
    for node in NODES:
        fake_apiserver.kubelet_run(NAMESPACE, pods[node])
    reconcile_servers(ctx)
    assert workload(api, workload_id)["status"] == "running"

    fake_apiserver.kubelet_terminate(NAMESPACE, pods["node-a"], "Completed", 0)
    reconcile_servers(ctx)
    assert workload(api, workload_id)["status"] == "running"  # node B's still runs

    fake_apiserver.kubelet_terminate(NAMESPACE, pods["node-b"], "Completed", 0)
    reconcile_servers(ctx)

    done = workload(api, workload_id)
    assert done["status"] == "succeeded", done["reason"]
    assert done["reason"] == "every container exited with code 0"


def test_a_replica_failing_on_one_node_fails_the_workload(
    ctx: ServiceContext,
    api: TestClient,
    fake_apiserver: FakeApiServer,
    spread: tuple[str, dict[str, str]],
) -> None:
    workload_id, pods = spread
    for node in NODES:
        fake_apiserver.kubelet_run(NAMESPACE, pods[node])
    reconcile_servers(ctx)

    fake_apiserver.kubelet_terminate(NAMESPACE, pods["node-a"], "Completed", 0)
    fake_apiserver.kubelet_terminate(NAMESPACE, pods["node-b"], "Error", 1)
    reconcile_servers(ctx)

    failed = workload(api, workload_id)
    assert failed["status"] == "failed"
    assert "exited with code 1" in failed["reason"]
