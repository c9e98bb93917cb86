"""The kube-nodes loop's writes: a kubernetes cluster's nodes become servers with their GPUs
(what foreign pods ask subtracted), cordoned/NotReady nodes drain with the reason and come
back, a node gone goes offline with its workloads re-queued; capacity never goes below a
reservation. The node lists are built by the runtime's own edge from objects shaped as
the API server sends them; the loop's calls to a live API server are in
test_kubernetes_cluster.py."""

from __future__ import annotations

import socket

import pytest
from factories.app import admin_caller, settle
from fastapi.testclient import TestClient
from kube.workloads import servers
from kubernetes import client as k8s

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.server_state import ClusterKind
from gpuyard.runtimes.kubernetes import (
    KubeNode,
    Requests,
    foreign_requests,
    node_inventory,
    unschedulable_reason,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.health import probe_servers
from gpuyard.services.fleet.kube_nodes import sync_cluster_nodes
from gpuyard.services.fleet.server_status import list_server_events
from gpuyard.store import fleet

KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559"}


def node_object(
    name: str,
    *,
    cpu: str = "16",
    memory: str = "64Gi",
    gpus: int = 0,
    unschedulable: bool = False,
    ready: str = "True",
) -> k8s.V1Node:
    allocatable = {"cpu": cpu, "memory": memory, "ephemeral-storage": "100Gi", "pods": "110"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return k8s.V1Node.from_dict(
        {
            "metadata": {"name": name, "labels": H100 if gpus else {}},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "allocatable": allocatable,
                "conditions": [{"type": "Ready", "status": ready, "message": "kubelet down"}],
            },
        }
    )


def kube_node(obj: k8s.V1Node, foreign: Requests | None = None) -> KubeNode:
    assert obj.metadata is not None
    assert obj.metadata.name is not None
    inventory = node_inventory(obj, foreign or Requests())
    return KubeNode(obj.metadata.name, inventory, unschedulable_reason(obj))


@pytest.fixture
def cluster(clock_ctx: ServiceContext) -> str:
    caller = admin_caller(clock_ctx)
    return create_cluster(clock_ctx, caller, "k8s", ClusterKind.KUBERNETES, KUBECONFIG).id


@pytest.fixture
def ctx(clock_ctx: ServiceContext) -> ServiceContext:
    """The context ``api`` is on: the manual clock's."""
    return clock_ctx


def test_nodes_become_servers_with_their_gpus(
    clock_ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    nodes = [kube_node(node_object("gpu-a", gpus=4)), kube_node(node_object("cpu-b", cpu="3500m"))]

    sync_cluster_nodes(clock_ctx, cluster, nodes)
    sync_cluster_nodes(clock_ctx, cluster, nodes)  # a second pass changes nothing

    found = servers(api, cluster)
    assert sorted(found) == ["cpu-b", "gpu-a"]
    gpu_a, cpu_b = found["gpu-a"], found["cpu-b"]
    assert (gpu_a["status"], gpu_a["cluster_id"]) == ("online", cluster)
    assert [(g["index"], g["model"]) for g in gpu_a["gpus"]] == [
        (i, "NVIDIA-H100-80GB-HBM3") for i in range(4)
    ]
    assert cpu_b["gpus"] == []
    with clock_ctx.db.read() as session:
        rows = {r.name: r for r in (fleet.server_row_named(session, n) for n in found) if r}
        assert (rows["cpu-b"].cpu_milli, rows["cpu-b"].ram_mib) == (3500, 64 * 1024)
        assert rows["gpu-a"].gpu_milli == 4000


def test_what_foreign_pods_ask_is_not_offered(
    clock_ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    foreign = k8s.V1Pod.from_dict(
        {
            "metadata": {"name": "someone-elses", "namespace": "ml", "labels": {"app": "x"}},
            "spec": {
                "nodeName": "gpu-a",
                "containers": [
                    {
                        "name": "c",
                        "resources": {"requests": {"cpu": "6", "nvidia.com/gpu": "3"}},
                    }
                ],
            },
            "status": {"phase": "Running"},
        }
    )
    asked = foreign_requests([foreign])["gpu-a"]
    # Submitted while the node offered all four (submit refuses what no server could
    # ever hold, by what each offers now: issue 21)...
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("gpu-a", gpus=4))])
    response = api.post(
        "/api/v1/workloads", json={"name": "two", "image": "busybox", "cpu": 1, "gpu": 2}
    )
    assert response.status_code == 201, response.text
    # ...then the foreign pod took three: one left for gpuyard, so nothing may land.
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("gpu-a", gpus=4), asked)])
    settle(clock_ctx)
    workload = api.get(f"/api/v1/workloads/{response.json()['id']}").json()
    assert workload["status"] == "pending"
    server = servers(api, cluster)["gpu-a"]
    assert len(server["gpus"]) == 1
    with clock_ctx.db.read() as session:
        row = fleet.server_row_named(session, "gpu-a")
        assert row is not None
        assert row.cpu_milli == 10_000


def test_a_cordoned_or_not_ready_node_drains_with_the_reason_and_comes_back(
    clock_ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1"))])
    server_id = servers(api, cluster)["n1"]["id"]

    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1", unschedulable=True))])
    assert servers(api, cluster)["n1"]["status"] == "draining"
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1"))])
    assert servers(api, cluster)["n1"]["status"] == "online"
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1", ready="False"))])
    assert servers(api, cluster)["n1"]["status"] == "draining"

    events, _total = list_server_events(clock_ctx, server_id, 10, 0)
    assert [(e.to_status, e.reason) for e in events] == [
        ("draining", "node cordoned (unschedulable)"),
        ("online", "node schedulable again"),
        ("draining", "node NotReady: kubelet down"),
    ]


def test_an_admins_drain_is_not_undone(
    clock_ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1"))])
    server_id = servers(api, cluster)["n1"]["id"]
    response = api.patch(f"/api/v1/servers/{server_id}", json={"status": "draining"})
    assert response.status_code == 200, response.text

    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1"))])

    assert servers(api, cluster)["n1"]["status"] == "draining"


def test_a_node_gone_goes_offline_and_its_workloads_are_requeued(
    clock_ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1", gpus=2))])
    response = api.post("/api/v1/workloads", json={"name": "w", "image": "busybox", "gpu": 1})
    workload_id = response.json()["id"]
    settle(clock_ctx)
    placed = api.get(f"/api/v1/workloads/{workload_id}").json()
    assert placed["status"] == "scheduled"

    sync_cluster_nodes(clock_ctx, cluster, [])

    assert servers(api, cluster)["n1"]["status"] == "offline"
    back = api.get(f"/api/v1/workloads/{workload_id}").json()
    assert back["status"] == "pending"
    assert "node gone from the cluster" in back["reason"]


def test_capacity_never_shrinks_below_what_is_reserved(
    clock_ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    sync_cluster_nodes(clock_ctx, cluster, [kube_node(node_object("n1", cpu="8", gpus=2))])
    response = api.post("/api/v1/workloads", json={"name": "w", "image": "busybox", "cpu": 6})
    settle(clock_ctx)
    assert api.get(f"/api/v1/workloads/{response.json()['id']}").json()["status"] == "scheduled"

    # Other pods now take most of the node: gpuyard keeps its reservation, offers no more.
    sync_cluster_nodes(
        clock_ctx, cluster, [kube_node(node_object("n1", cpu="8", gpus=2), Requests(6000))]
    )

    with clock_ctx.db.read() as session:
        row = fleet.server_row_named(session, "n1")
        assert row is not None
        assert (row.cpu_milli, row.alloc_cpu_milli) == (6000, 6000)


@pytest.mark.parametrize(
    ("kubeconfig", "message"),
    [
        ("- just\n- a list\n", "must be a kubeconfig file: a YAML mapping"),
        ("clusters: [unclosed\n", "is not valid YAML"),
        ("plain words", "must be a kubeconfig file: a YAML mapping"),
    ],
)
def test_a_kubeconfig_that_is_not_one_is_refused_naming_it(
    clock_ctx: ServiceContext, kubeconfig: str, message: str
) -> None:
    caller = admin_caller(clock_ctx)

    with pytest.raises(InvalidInput) as refused:
        create_cluster(clock_ctx, caller, "k8s", ClusterKind.KUBERNETES, kubeconfig)

    [error] = refused.value.errors
    assert error.field == "kubeconfig"
    assert error.message.startswith(message)
    with clock_ctx.db.read() as session:
        assert fleet.cluster_named(session, "k8s") is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_cluster_whose_api_server_does_not_answer_goes_offline(
    clock_ctx: ServiceContext, api: TestClient
) -> None:
    """The health loop probes each node through the cluster's API server, with the
    official client built from the cluster's kubeconfig; nothing listens there."""
    kubeconfig = f"""apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {{server: "http://127.0.0.1:{_closed_port()}"}}
users:
- name: gpuyard
  user: {{token: not-a-real-token}}
contexts:
- name: gone
  context: {{cluster: gone, user: gpuyard}}
current-context: gone
"""
    caller = admin_caller(clock_ctx)
    cluster_id = create_cluster(clock_ctx, caller, "gone", ClusterKind.KUBERNETES, kubeconfig).id
    sync_cluster_nodes(clock_ctx, cluster_id, [kube_node(node_object("n1", gpus=1))])
    response = api.post("/api/v1/workloads", json={"name": "w", "image": "busybox", "gpu": 1})
    workload_id = response.json()["id"]
    settle(clock_ctx)
    assert api.get(f"/api/v1/workloads/{workload_id}").json()["status"] == "scheduled"

    for _ in range(clock_ctx.settings.health_offline_after_misses):
        probe_servers(clock_ctx)

    assert servers(api, cluster_id)["n1"]["status"] == "offline"
    back = api.get(f"/api/v1/workloads/{workload_id}").json()
    assert back["status"] == "pending"
    assert "missed probes" in back["reason"]
