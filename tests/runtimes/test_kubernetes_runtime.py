"""The kubernetes runtime's own edge: the pods it writes and how it reads pods and nodes
(as the API server sends them: camelCase JSON, through the official client's models),
and the names it gives Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client as k8s

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.kube_names import dns_label, is_dns_label, pod_name, team_namespace
from gpuyard.domain.runtime_records import ReplicaState
from gpuyard.runtimes.base import RegistrationFields, ReplicaSpec
from gpuyard.runtimes.kubernetes import (
    KubernetesRuntime,
    Requests,
    foreign_requests,
    make_handle,
    node_inventory,
    observation_of,
    pod_for,
    split_handle,
    unschedulable_reason,
)

WORKLOAD = "0123456789abcdef0123456789abcdef"


def spec(**overrides: Any) -> ReplicaSpec:
    values: dict[str, Any] = {
        "workload_id": WORKLOAD,
        "replica": 1,
        "image": "nvcr.io/nvidia/pytorch:24.01",
        "command": ["python", "train.py"],
        "env": {"B": "2", "A": "1"},
        "ports": [8888],
        "server_name": "gpu-node-1",
        "cpu_milli": 3500,
        "ram_mib": 16384,
        "storage_mib": 2048,
        "gpu_indices": [0, 1],
        "labels": {"pool": "jupyter pool", "status": "warm"},
    }
    values.update(overrides)
    return ReplicaSpec(**values)


def pod(
    phase: str,
    state: dict[str, Any] | None = None,
    *,
    labels: dict[str, str] | None = None,
    reason: str | None = None,
    node: str = "gpu-node-1",
    requests: dict[str, str] | None = None,
) -> k8s.V1Pod:
    """A pod as the API server answers it (the shape of a recorded ``kubectl get -o json``)."""
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
        status["message"] = "The node was low on resource: memory."
    if state is not None:
        status["containerStatuses"] = [
            {
                "name": "replica",
                "image": "busybox",
                "imageID": "",
                "ready": "running" in state,
                "restartCount": 0,
                "state": state,
            }
        ]
    return k8s.V1Pod.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name(WORKLOAD, 0),
                "namespace": "prod-team",
                "labels": labels
                if labels is not None
                else {
                    "app.kubernetes.io/managed-by": "gpuyard",
                    "gpuyard.io/workload-id": WORKLOAD,
                    "gpuyard.io/replica": "0",
                },
                "annotations": {"gpuyard.io/labels": '{"pool": "p"}'},
                "creationTimestamp": "2026-12-04T10:00:00Z",
            },
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "replica",
                        "image": "busybox",
                        "resources": {"requests": requests or {}, "limits": requests or {}},
                    }
                ],
            },
            "status": status,
        }
    )


def node(
    allocatable: dict[str, str],
    *,
    labels: dict[str, str] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
) -> k8s.V1Node:
    return k8s.V1Node.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "gpu-node-1", "labels": labels or {}},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "allocatable": allocatable,
                "capacity": allocatable,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": ready,
                        "reason": "KubeletReady" if ready == "True" else "KubeletNotReady",
                        "message": "kubelet is posting ready status"
                        if ready == "True"
                        else "container runtime is down",
                    }
                ],
            },
        }
    )


# -- the pod of a replica --------------------------------------------------------------------


def test_a_replica_becomes_a_pod_bound_to_its_node_with_requests_equal_to_limits() -> None:
    body = k8s.ApiClient().sanitize_for_serialization(pod_for(spec(), "prod-team"))

    assert body["metadata"]["name"] == f"gpuyard-{WORKLOAD}-1"
    assert body["metadata"]["namespace"] == "prod-team"
    assert body["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "gpuyard",
        "gpuyard.io/workload-id": WORKLOAD,
        "gpuyard.io/replica": "1",
    }
    assert body["metadata"]["annotations"] == {
        "gpuyard.io/labels": '{"pool": "jupyter pool", "status": "warm"}'
    }
    assert body["spec"]["nodeName"] == "gpu-node-1"
    assert body["spec"]["restartPolicy"] == "Never"
    [container] = body["spec"]["containers"]
    expected = {
        "cpu": "3500m",
        "memory": "16384Mi",
        "ephemeral-storage": "2048Mi",
        "nvidia.com/gpu": "2",
    }
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert container["image"] == "nvcr.io/nvidia/pytorch:24.01"
    assert container["args"] == ["python", "train.py"]
    assert "command" not in container  # the image's entrypoint stays
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert container["ports"] == [{"containerPort": 8888}]
    assert container["volumeMounts"] == [{"mountPath": "/workspace", "name": "workspace"}]


def test_a_cpu_replica_asks_for_no_gpu_and_no_storage_it_was_not_given() -> None:
    body = k8s.ApiClient().sanitize_for_serialization(
        pod_for(spec(gpu_indices=[], storage_mib=0, command=None, env={}, ports=[]), "gpuyard")
    )

    [container] = body["spec"]["containers"]
    assert container["resources"]["limits"] == {"cpu": "3500m", "memory": "16384Mi"}
    assert "args" not in container
    assert "env" not in container
    assert "ports" not in container


# -- pods read back --------------------------------------------------------------------------


def test_a_pending_pod_is_created_and_not_running() -> None:
    seen = observation_of(pod("Pending"))

    assert (seen.state, seen.running, seen.exit_code, seen.error) == (
        ReplicaState.CREATED,
        False,
        None,
        "",
    )
    assert seen.container_id == f"prod-team/{pod_name(WORKLOAD, 0)}"
    assert (seen.workload_id, seen.replica, seen.labels) == (WORKLOAD, 0, {"pool": "p"})


def test_a_running_pod_runs() -> None:
    seen = observation_of(pod("Running", {"running": {"startedAt": "2026-12-04T10:00:05Z"}}))

    assert (seen.state, seen.running, seen.ended) == (ReplicaState.RUNNING, True, False)
    assert seen.started_at is not None
    assert seen.started_at.second == 5


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"])
def test_an_image_that_cannot_be_pulled_cannot_start(reason: str) -> None:
    waiting = {"waiting": {"reason": reason, "message": 'pull access denied for "nope"'}}
    seen = observation_of(pod("Pending", waiting))

    assert seen.cannot_start
    assert (seen.running, seen.ended) == (False, False)
    assert seen.error == f'{reason}: pull access denied for "nope"'


def test_a_container_still_creating_can_start() -> None:
    seen = observation_of(pod("Pending", {"waiting": {"reason": "ContainerCreating"}}))

    assert not seen.cannot_start
    assert seen.error == "ContainerCreating"


def test_an_oom_killed_container_ended_oom_killed() -> None:
    ended = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    seen = observation_of(pod("Failed", ended))

    assert (seen.state, seen.exit_code, seen.oom_killed, seen.ended) == (
        ReplicaState.EXITED,
        137,
        True,
        True,
    )


def test_a_completed_pod_ended_with_its_exit_code() -> None:
    ok = observation_of(pod("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}}))
    bad = observation_of(pod("Failed", {"terminated": {"exitCode": 3, "reason": "Error"}}))

    assert (ok.exit_code, ok.error, ok.ended) == (0, "", True)
    assert (bad.exit_code, bad.error, bad.oom_killed) == (3, "Error", False)


def test_an_evicted_pod_says_so() -> None:
    evicted = observation_of(pod("Failed", reason="Evicted"))
    killed = observation_of(
        pod("Failed", {"terminated": {"exitCode": 137, "reason": "Error"}}, reason="Evicted")
    )

    assert evicted.ended
    assert evicted.exit_code == 1
    assert evicted.error == "Evicted The node was low on resource: memory."
    assert killed.exit_code == 137
    assert killed.error.startswith("Evicted: The node was low on resource: memory.")


# -- nodes -----------------------------------------------------------------------------------

ALLOCATABLE = {
    "cpu": "15890m",
    "memory": "63Gi",
    "ephemeral-storage": "100Gi",
    "nvidia.com/gpu": "4",
    "pods": "110",
}
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559"}


def test_a_nodes_inventory_is_its_allocatable_with_gpus_by_index_and_model() -> None:
    inventory = node_inventory(node(ALLOCATABLE, labels=H100), Requests())

    assert inventory.capacity.cpu_milli == 15890
    assert (inventory.ram_mib, inventory.storage_mib) == (63 * 1024, 100 * 1024)
    assert [(g.index, g.model, g.memory_mib) for g in inventory.gpus] == [
        (i, "NVIDIA-H100-80GB-HBM3", 81559) for i in range(4)
    ]
    assert inventory.capacity.gpu_milli == 4000


def test_foreign_pods_are_subtracted_and_gpuyards_own_are_not() -> None:
    foreign = pod(
        "Running",
        labels={"app": "someone-else"},
        requests={"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"},
    )
    limits_only = k8s.V1Pod.from_dict(
        {
            "metadata": {"name": "x", "namespace": "other"},
            "spec": {
                "nodeName": "gpu-node-1",
                "containers": [{"name": "c", "resources": {"limits": {"cpu": "500m"}}}],
            },
            "status": {"phase": "Pending"},
        }
    )
    finished = pod("Succeeded", labels={"app": "x"}, requests={"cpu": "8"})
    ours = pod("Running", requests={"cpu": "4", "nvidia.com/gpu": "2"})
    elsewhere = pod("Running", labels={"app": "y"}, node="gpu-node-2", requests={"cpu": "1"})

    by_node = foreign_requests([foreign, limits_only, finished, ours, elsewhere])
    inventory = node_inventory(node(ALLOCATABLE, labels=H100), by_node["gpu-node-1"])

    assert by_node["gpu-node-1"] == Requests(2500, 1024, 0, 1)
    assert by_node["gpu-node-2"] == Requests(1000, 0, 0, 0)
    assert inventory.capacity.cpu_milli == 15890 - 2500
    assert inventory.ram_mib == 63 * 1024 - 1024
    assert len(inventory.gpus) == 3


def test_a_node_never_has_less_than_nothing() -> None:
    inventory = node_inventory(node(ALLOCATABLE), Requests(10**9, 10**9, 10**9, 99))

    assert inventory.capacity.cpu_milli == 0
    assert inventory.gpus == ()
    assert (inventory.ram_mib, inventory.storage_mib) == (0, 0)


def test_cordoned_and_not_ready_nodes_take_no_new_work_and_say_why() -> None:
    assert unschedulable_reason(node(ALLOCATABLE)) is None
    assert unschedulable_reason(node(ALLOCATABLE, unschedulable=True)) == (
        "node cordoned (unschedulable)"
    )
    assert unschedulable_reason(node(ALLOCATABLE, ready="False")) == (
        "node NotReady: container runtime is down"
    )


# -- handles, registration, names ------------------------------------------------------------


def test_a_handle_names_cluster_namespace_and_pod() -> None:
    handle = make_handle("c" * 32, "prod-team", pod_name(WORKLOAD, 2))

    assert split_handle(handle) == ("c" * 32, "prod-team", f"gpuyard-{WORKLOAD}-2")
    with pytest.raises(ValueError, match="not a kubernetes runtime handle"):
        split_handle("gpu-1/abc")


def test_a_server_is_never_registered_by_hand_in_a_kubernetes_cluster() -> None:
    runtime = KubernetesRuntime(clients=None)  # type: ignore[arg-type]
    fields = RegistrationFields(4.0, 8.0, 0, None, {"agent_url": None})

    with pytest.raises(InvalidInput) as refused:
        runtime.check_registration(fields)

    [error] = refused.value.errors
    assert error.field == "cluster_id"
    assert error.message.startswith("nodes come from the cluster")


def test_team_names_become_namespaces() -> None:
    assert team_namespace("prod-team") == "prod-team"
    assert team_namespace("Research Lab #2") == "research-lab-2"
    assert team_namespace(None) == ""
    assert team_namespace("!!!") == ""


@given(st.text(max_size=200))
def test_a_dns_label_is_one_or_empty(text: str) -> None:
    label = dns_label(text)

    assert label == "" or is_dns_label(label)
    assert dns_label(label) == label  # already a label: unchanged
