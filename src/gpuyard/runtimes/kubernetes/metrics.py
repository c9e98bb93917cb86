"""Usage from metrics-server: the ``metrics.k8s.io/v1beta1`` NodeMetrics and PodMetrics a
cluster serves when metrics-server (or another provider of that API) is installed, read
through the official client's ``CustomObjectsApi``.

- A node's reading (its CPU and memory in use, in percent of the node's ``capacity``)
  rides on the health probe's inventory, as a docker agent's does: the health loop keeps
  it as the server's last reading and the history loop samples it. No reading (no
  metrics-server, a node not scraped yet, any failure) leaves the figures unknown,
  never 0, and never costs the probe its answer.
- A pod's CPU in use is already a rate (metrics-server averages it over its window), so
  the culling loop gets it as a share of the cores the replica holds. Where there will be
  no signal it is said why (``ReplicaUsage.no_signal``): a cluster that serves no
  ``metrics.k8s.io`` (404 on the group), and a GPU pod, since metrics-server reports no
  GPU utilisation. A pod not scraped yet has no reading this time (the idle clock starts
  over), not "no signal".

PodMetrics are listed with the workload's labels rather than read by name: a list answers
an empty list for a pod not scraped yet and 404 only when the group itself is not
served, which a read by name cannot tell apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubernetes import client as k8s

from gpuyard.domain.culling import ReplicaUsage
from gpuyard.domain.usage import UsageReading, percent
from gpuyard.runtimes.kubernetes.calls import TIMEOUT, KubeFailure, calling
from gpuyard.runtimes.kubernetes.nodes import parse_quantity
from gpuyard.runtimes.kubernetes.pods import MANAGED_BY_GPUYARD, WORKLOAD_LABEL

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
#: Why a pod of a cluster without metrics-server has no utilisation signal.
NO_METRICS_SERVER = (
    "the cluster serves no metrics.k8s.io API (no metrics-server installed), so there is "
    "no utilisation signal for its pods"
)
#: Why a GPU pod has none even with metrics-server.
GPU_POD = (
    "it holds GPUs, and metrics-server reports no GPU utilisation (only CPU and memory), "
    "so there is no signal of whether its GPUs are used"
)


def _custom(api_client: k8s.ApiClient) -> Any:
    return k8s.CustomObjectsApi(api_client)


def _quantity(usage: Mapping[str, Any] | None, key: str) -> Decimal | None:
    if not isinstance(usage, Mapping) or not isinstance(usage.get(key), str):
        return None
    try:
        return Decimal(parse_quantity(usage[key]))
    except (ValueError, ArithmeticError):
        return None


def node_usage(api_client: k8s.ApiClient, node: k8s.V1Node) -> UsageReading | None:
    """The node's CPU and memory in use, in percent of its capacity (allocatable where
    it gives none); None when metrics-server has no reading for it (or is not there)."""
    meta = node.metadata or k8s.V1ObjectMeta()
    try:
        with calling(f"metrics of node {meta.name}"):
            found = _custom(api_client).get_cluster_custom_object(
                GROUP, VERSION, "nodes", str(meta.name), _request_timeout=TIMEOUT
            )
    except KubeFailure:
        return None  # no figures this time: unknown, never 0
    usage = found.get("usage") if isinstance(found, dict) else None
    status = node.status or k8s.V1NodeStatus()
    whole = status.capacity or status.allocatable or {}
    cpu, memory = _quantity(usage, "cpu"), _quantity(usage, "memory")
    cpu_whole, memory_whole = _quantity(whole, "cpu"), _quantity(whole, "memory")
    if cpu is None and memory is None:
        return None
    return UsageReading(
        cpu_used_pct=(
            percent(float(cpu), float(cpu_whole)) if cpu is not None and cpu_whole else None
        ),
        ram_used_pct=(
            percent(float(memory), float(memory_whole))
            if memory is not None and memory_whole
            else None
        ),
        gpus=(),  # metrics-server reports no GPU utilisation
    )


def pod_usage(
    api_client: k8s.ApiClient,
    namespace: str,
    name: str,
    workload_id: str,
    cpu_cores: float,
) -> ReplicaUsage:
    """What the pod of a replica without GPUs (a GPU pod has no signal: :data:`GPU_POD`)
    uses now (see the module's docstring): its CPU share, no reading yet (every part
    None), or why it has no signal. KubeFailure when the API server does not answer or
    refuses (no reading this time)."""
    selector = f"{MANAGED_BY_GPUYARD},{WORKLOAD_LABEL}={workload_id}"
    try:
        with calling(f"metrics of pod {namespace}/{name}"):
            listed = _custom(api_client).list_namespaced_custom_object(
                GROUP, VERSION, namespace, "pods", label_selector=selector, _request_timeout=TIMEOUT
            )
    except KubeFailure as exc:
        if exc.status == 404:
            return ReplicaUsage(no_signal=NO_METRICS_SERVER)
        raise
    items = listed.get("items") if isinstance(listed, dict) else None
    for item in items if isinstance(items, list) else []:
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(meta, dict) or meta.get("name") != name:
            continue
        used = Decimal(0)
        containers = item.get("containers")
        for container in containers if isinstance(containers, list) else []:
            cpu = _quantity(container.get("usage") if isinstance(container, dict) else None, "cpu")
            if cpu is not None:
                used += cpu
        if cpu_cores <= 0:
            return ReplicaUsage()
        return ReplicaUsage(cpu_pct=percent(float(used), cpu_cores))
    return ReplicaUsage()  # not scraped yet: no reading this time
