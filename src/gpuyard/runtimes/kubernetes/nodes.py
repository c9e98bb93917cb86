"""Reading a cluster's nodes: what gpuyard may place on each (allocatable less what
foreign pods ask), why one takes nothing new, and ``ClusterView``, the nodes and pods of
a cluster kept by list then watch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.utils import parse_quantity as _parse_quantity

from gpuyard.domain.runtime_records import HostGpu, HostInventory
from gpuyard.runtimes.kubernetes.calls import TIMEOUT, calling
from gpuyard.runtimes.kubernetes.pods import (
    GPU_MEMORY_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    MANAGED_BY,
    WORKLOAD_LABEL,
)

_MIB = 1024 * 1024
#: The client's quantity parser ("16Gi", "3500m" -> Decimal), which it ships untyped.
parse_quantity = cast(Callable[[str], Decimal], _parse_quantity)


@dataclass(frozen=True)
class Requests:
    """What pods ask of a node: millicores, MiB of memory and storage, whole GPUs."""

    cpu_milli: int = 0
    ram_mib: int = 0
    storage_mib: int = 0
    gpus: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(
            self.cpu_milli + other.cpu_milli,
            self.ram_mib + other.ram_mib,
            self.storage_mib + other.storage_mib,
            self.gpus + other.gpus,
        )


def _quantity(values: Mapping[str, str] | None, key: str) -> Decimal:
    if not values or key not in values:
        return Decimal(0)
    try:
        return Decimal(parse_quantity(values[key]))
    except (ValueError, ArithmeticError):
        return Decimal(0)


def requests_of(resources: Mapping[str, str] | None) -> Requests:
    """A resource list (allocatable, or a container's requests) in gpuyard's units,
    rounded down (a node's allocatable) ."""
    return Requests(
        int(_quantity(resources, "cpu") * 1000),
        int(_quantity(resources, "memory") / _MIB),
        int(_quantity(resources, "ephemeral-storage") / _MIB),
        int(_quantity(resources, GPU_RESOURCE)),
    )


def _asked(resources: Mapping[str, str] | None) -> Requests:
    """What a container asks, rounded up (it holds at least that much)."""
    return Requests(
        math.ceil(_quantity(resources, "cpu") * 1000),
        math.ceil(_quantity(resources, "memory") / _MIB),
        math.ceil(_quantity(resources, "ephemeral-storage") / _MIB),
        math.ceil(_quantity(resources, GPU_RESOURCE)),
    )


def pod_requests(pod: k8s.V1Pod) -> Requests:
    """What a pod holds on its node: its containers' requests (limits where a container
    gives no request, as Kubernetes defaults them), or its largest init container's."""

    def container(c: k8s.V1Container) -> Requests:
        res = c.resources or k8s.V1ResourceRequirements()
        merged = {**(res.limits or {}), **(res.requests or {})}
        return _asked(merged)

    spec = pod.spec
    if spec is None:
        return Requests()
    total = Requests()
    for c in spec.containers or []:
        total = total + container(c)
    for c in spec.init_containers or []:
        init = container(c)
        total = Requests(
            max(total.cpu_milli, init.cpu_milli),
            max(total.ram_mib, init.ram_mib),
            max(total.storage_mib, init.storage_mib),
            max(total.gpus, init.gpus),
        )
    return total


def is_gpuyards(pod: k8s.V1Pod) -> bool:
    labels = (pod.metadata.labels if pod.metadata else None) or {}
    return labels.get(MANAGED_BY) == "gpuyard" and WORKLOAD_LABEL in labels


def holds_resources(pod: k8s.V1Pod) -> bool:
    """A pod that has not ended holds what it asked for on its node."""
    phase = pod.status.phase if pod.status else None
    return phase not in ("Succeeded", "Failed")


def unschedulable_reason(node: k8s.V1Node) -> str | None:
    """Why gpuyard must place nothing new on ``node`` (cordoned, NotReady), or None."""
    if node.spec is not None and node.spec.unschedulable:
        return "node cordoned (unschedulable)"
    conditions = node.status.conditions if node.status else None
    ready = [c for c in conditions or [] if c.type == "Ready"]
    if not ready or ready[0].status != "True":
        why = ready[0].message or ready[0].reason if ready else "no Ready condition"
        return f"node NotReady: {why}" if why else "node NotReady"
    return None


def node_inventory(node: k8s.V1Node, foreign: Requests) -> HostInventory:
    """What gpuyard may place on ``node``: its allocatable minus ``foreign`` (what pods
    gpuyard did not create ask for there), never below zero."""
    meta = node.metadata or k8s.V1ObjectMeta()
    name = meta.name or ""
    labels = meta.labels or {}
    allocatable = requests_of(node.status.allocatable if node.status else None)
    cpu_milli = max(allocatable.cpu_milli - foreign.cpu_milli, 0)
    gpus = max(allocatable.gpus - foreign.gpus, 0)
    model = labels.get(GPU_PRODUCT_LABEL, "") or ("nvidia" if gpus else "")
    try:
        memory_mib = int(labels.get(GPU_MEMORY_LABEL, "0"))
    except ValueError:
        memory_mib = 0
    return HostInventory(
        reported_name=name,
        cpu_count=cpu_milli // 1000,
        cpu_milli=cpu_milli,
        ram_mib=max(allocatable.ram_mib - foreign.ram_mib, 0),
        storage_mib=max(allocatable.storage_mib - foreign.storage_mib, 0),
        gpus=tuple(
            HostGpu(index=i, uuid=f"k8s-{name}-gpu{i}"[:64], model=model, memory_mib=memory_mib)
            for i in range(gpus)
        ),
    )


@dataclass(frozen=True)
class KubeNode:
    """One node of a cluster as gpuyard sees it: its name, what gpuyard may place there,
    and why nothing new may go there (None: it takes work)."""

    name: str
    inventory: HostInventory
    unschedulable: str | None


def foreign_requests(pods: Iterable[k8s.V1Pod]) -> dict[str, Requests]:
    """{node name: what the pods gpuyard did not create ask for on it}."""
    by_node: dict[str, Requests] = {}
    for pod in pods:
        node = pod.spec.node_name if pod.spec else None
        if not node or is_gpuyards(pod) or not holds_resources(pod):
            continue
        by_node[node] = by_node.get(node, Requests()) + pod_requests(pod)
    return by_node


def _key(obj: k8s.V1Node | k8s.V1Pod) -> str:
    meta = obj.metadata or k8s.V1ObjectMeta()
    return f"{meta.namespace or ''}/{meta.name or ''}"


class ClusterView:
    """One cluster's nodes and pods as last listed and watched, with the resource
    versions to watch them from."""

    def __init__(
        self,
        nodes: dict[str, k8s.V1Node],
        pods: dict[str, k8s.V1Pod],
        node_version: str,
        pod_version: str,
    ) -> None:
        self._nodes = nodes
        self._pods = pods
        self.node_version = node_version
        self.pod_version = pod_version

    @classmethod
    def listed(cls, api: k8s.CoreV1Api) -> ClusterView:
        """Nodes and pods as listed now (two calls)."""
        with calling("list nodes"):
            nodes = api.list_node(_request_timeout=TIMEOUT)
        with calling("list pods"):
            pods = api.list_pod_for_all_namespaces(_request_timeout=TIMEOUT)
        return cls(
            {_key(n): n for n in nodes.items},
            {_key(p): p for p in pods.items},
            (nodes.metadata.resource_version if nodes.metadata else None) or "",
            (pods.metadata.resource_version if pods.metadata else None) or "",
        )

    def watch(self, api: k8s.CoreV1Api, watch_s: float) -> None:
        """Apply what changed since the versions kept, watching nodes then pods for up to
        ``watch_s`` seconds each (bookmarks move the versions on); KubeFailure 410 when a
        version expired."""
        seconds = max(math.ceil(watch_s), 1)
        self.node_version = _watch(api.list_node, self.node_version, self._nodes, seconds)
        self.pod_version = _watch(
            api.list_pod_for_all_namespaces, self.pod_version, self._pods, seconds
        )

    def nodes(self) -> list[KubeNode]:
        """Every node with what gpuyard may place there (foreign pods' requests less)."""
        foreign = foreign_requests(self._pods.values())
        result = []
        for node in sorted(self._nodes.values(), key=_key):
            name = node.metadata.name if node.metadata else None
            if not name:
                continue
            inventory = node_inventory(node, foreign.get(name, Requests()))
            result.append(KubeNode(name, inventory, unschedulable_reason(node)))
        return result


def _watch(
    list_call: Callable[..., Any], version: str, objects: dict[str, Any], seconds: int
) -> str:
    """Watch ``list_call``'s objects from ``version`` for ``seconds``, applying events to
    ``objects``; the version to go on from."""
    watcher: Any = cast(Callable[[], Any], k8s_watch.Watch)()  # untyped in the client
    with calling("watch"):
        for event in watcher.stream(
            list_call,
            resource_version=version,
            timeout_seconds=seconds,
            allow_watch_bookmarks=True,
            _request_timeout=(TIMEOUT[0], seconds + TIMEOUT[1]),
        ):
            kind, obj = event.get("type"), event.get("object")
            if kind == "BOOKMARK" or obj is None:
                continue
            if kind == "DELETED":
                objects.pop(_key(obj), None)
            elif kind in ("ADDED", "MODIFIED"):
                objects[_key(obj)] = obj
    return str(watcher.resource_version or version)
