"""The kubernetes runtime: a cluster's nodes are gpuyard servers, replicas are pods.

gpuyard's scheduler decides where a replica runs (as Kueue and KAI do for their queues):
``start`` creates one pod per replica with ``nodeName`` set to the chosen node, in the
namespace of the workload's team (``ReplicaSpec.namespace``; the runtime's default
namespace when it has none), created if missing and labelled as gpuyard's. Requests equal
limits (cpu millicores, memory and ephemeral storage in MiB, whole ``nvidia.com/gpu``);
the pod never restarts (``restartPolicy: Never``): the reconcile loop reads what it became.

Everything goes through the official client (``kubernetes.client.CoreV1Api``), over the
``ApiClient`` that ``KubeClientSource.api_client(cluster_id)`` hands out (services build it
from the cluster's decrypted kubeconfig); its answers are converted here into
``gpuyard.domain.runtime_records`` values and go no further. Every call is network I/O:
call it between transactions, never inside one.

Handles are ``"<cluster_id>/<namespace>/<pod>"``; a container id (as ``containers`` lists
them) is ``"<namespace>/<pod>"``. A node's inventory is its ``allocatable`` MINUS what the
pods gpuyard did not create ask for on it (foreign pods), so gpuyard never places more
than the node has left when other schedulers share it.

Not done yet: exec through the API server (its ``channel.k8s.io`` subprotocol is not the
agent's exec stream the relay speaks), workspace files and images (409).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn, Protocol, cast

import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity as _parse_quantity

from gpuyard.domain.culling import ReplicaUsage, ReplicaUsageQuery
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.kube_names import pod_name
from gpuyard.domain.replica_access import ExecTarget
from gpuyard.domain.runtime_records import (
    HostGpu,
    HostInventory,
    ReachedServer,
    ReplicaObservation,
    ReplicaState,
    ServerEndpoint,
)
from gpuyard.domain.usage import ServerLoad, UsageReading
from gpuyard.runtimes.base import (
    RegistrationFields,
    ReplicaSpec,
    RuntimeFailure,
    RuntimeUnreachable,
    WithoutHostImages,
    WithoutWorkspaceFiles,
)

#: gpuyard's mark on what it creates (namespaces, pods).
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_GPUYARD = f"{MANAGED_BY}=gpuyard"
WORKLOAD_LABEL = "gpuyard.io/workload-id"
REPLICA_LABEL = "gpuyard.io/replica"
#: The replica's labels beside gpuyard's (warm pools), as one JSON object: pool label
#: values need not be valid Kubernetes label values.
LABELS_ANNOTATION = "gpuyard.io/labels"
CONTAINER = "replica"
GPU_RESOURCE = "nvidia.com/gpu"
#: Node labels saying the GPUs' model and memory (NVIDIA's GPU feature discovery).
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
WORKSPACE_VOLUME = "workspace"
#: (connect, read) seconds for ordinary calls; logs that follow have no read timeout.
TIMEOUT = (3.0, 20.0)
#: Waiting reasons that do not resolve by themselves: the replica cannot start.
CANNOT_START = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
_MIB = 1024 * 1024
#: The first wait after a failed list or watch of a cluster, doubled each failure up to
#: the second.
BACKOFF_S = 1.0
#: A stop waits for the pod to be gone this much past its grace period, looking this often.
STOP_MARGIN_S = 10.0
STOP_POLL_S = 0.5
BACKOFF_MAX_S = 60.0
#: The client's quantity parser ("16Gi", "3500m" -> Decimal), which it ships untyped.
parse_quantity = cast(Callable[[str], Decimal], _parse_quantity)


class KubeClientSource(Protocol):
    """What the runtime needs from services: a cluster's API client and a server's
    cluster (servers are the clusters' nodes, by name)."""

    def api_client(self, cluster_id: str) -> k8s.ApiClient:
        """The (cached) client of ``cluster_id``'s API server; NotFound when there is no
        such kubernetes cluster, RuntimeUnreachable when no client can be built."""
        ...

    def cluster_of(self, server_name: str) -> str:
        """The cluster id of the server ``server_name`` (NotFound when there is none)."""
        ...


class KubeFailure(RuntimeFailure):
    """The API server refused a call (or did not answer: ``KubeUnreachable``)."""

    def __init__(self, status: int, detail: str, *, title: str = "Kubernetes error") -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = []

    @classmethod
    def of(cls, exc: ApiException, what: str) -> KubeFailure:
        """The failure an ``ApiException`` says (its Status message when it has one)."""
        status = int(exc.status or 0)
        message = str(exc.reason or "")
        try:
            body = json.loads(exc.body or "{}")
        except (TypeError, ValueError):
            body = {}
        if isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
        detail = f"{what}: {status} {message}"[:1000]
        if status in (0, 429, 500, 502, 503, 504):
            return KubeUnreachable(detail)
        return cls(status, detail)


class KubeUnreachable(KubeFailure, RuntimeUnreachable):
    """No answer from the API server (or a 5xx/429): worth trying again later."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, detail, title="Kubernetes API server unreachable")


@contextmanager
def calling(what: str) -> Iterator[None]:
    """Turn the client's exceptions into runtime failures saying ``what`` was asked."""
    try:
        yield
    except ApiException as exc:
        raise KubeFailure.of(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeUnreachable(f"{what}: {type(exc).__name__}: {exc}"[:1000]) from exc


# -- handles -------------------------------------------------------------------------------


def make_handle(cluster_id: str, namespace: str, name: str) -> str:
    return f"{cluster_id}/{namespace}/{name}"


def split_handle(handle: str) -> tuple[str, str, str]:
    """``"c1/prod-team/gpuyard-...-0"`` -> (cluster id, namespace, pod name)."""
    parts = handle.split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a kubernetes runtime handle: {handle!r}")
    return parts[0], parts[1], parts[2]


# -- pods ----------------------------------------------------------------------------------


def resources_of(spec: ReplicaSpec) -> dict[str, str]:
    """Requests (== limits) of one replica's container."""
    resources = {
        "cpu": f"{spec.cpu_milli}m",
        "memory": f"{spec.ram_mib}Mi",
    }
    if spec.storage_mib:
        resources["ephemeral-storage"] = f"{spec.storage_mib}Mi"
    if spec.gpu_indices:
        resources[GPU_RESOURCE] = str(len(spec.gpu_indices))
    return resources


def pod_for(spec: ReplicaSpec, namespace: str) -> k8s.V1Pod:
    """The pod of one replica, bound to its node (``nodeName``: no scheduler of the
    cluster's own places it)."""
    resources = resources_of(spec)
    labels = {
        MANAGED_BY: "gpuyard",
        WORKLOAD_LABEL: spec.workload_id,
        REPLICA_LABEL: str(spec.replica),
    }
    container = k8s.V1Container(
        name=CONTAINER,
        image=spec.image,
        # The replica's command replaces the image's CMD, as ``docker run IMAGE CMD`` does.
        args=list(spec.command) if spec.command is not None else None,
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in sorted(spec.env.items())] or None,
        ports=[k8s.V1ContainerPort(container_port=int(p)) for p in spec.ports] or None,
        resources=k8s.V1ResourceRequirements(requests=resources, limits=dict(resources)),
        volume_mounts=[k8s.V1VolumeMount(name=WORKSPACE_VOLUME, mount_path=spec.files_path)],
    )
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=pod_name(spec.workload_id, spec.replica),
            namespace=namespace,
            labels=labels,
            annotations={LABELS_ANNOTATION: json.dumps(dict(spec.labels), sort_keys=True)},
        ),
        spec=k8s.V1PodSpec(
            node_name=spec.server_name,
            restart_policy="Never",
            containers=[container],
            volumes=[k8s.V1Volume(name=WORKSPACE_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource())],
        ),
    )


def _state_of(pod: k8s.V1Pod) -> tuple[ReplicaState, bool, int | None, bool, str]:
    """(state, running, exit code, OOM-killed, error) of a pod's replica container."""
    status = pod.status or k8s.V1PodStatus()
    phase = status.phase or "Pending"
    mine = [c for c in status.container_statuses or [] if c.name == CONTAINER]
    pod_reason = " ".join(x for x in (status.reason, status.message) if x)
    state = mine[0].state if mine and mine[0].state else None
    if state is not None and state.terminated is not None:
        ended = state.terminated
        oom = ended.reason == "OOMKilled"
        error = "" if ended.reason in (None, "Completed") else str(ended.reason)
        if status.reason == "Evicted":
            error = f"Evicted: {status.message or ''}".strip()
        if ended.message and error:
            error = f"{error}: {ended.message}"
        return ReplicaState.EXITED, False, int(ended.exit_code), oom, error
    if phase == "Failed":
        # Failed before its container ran (evicted, refused by the node's admission):
        # no exit code of its own, so 1 with the pod's reason.
        return ReplicaState.EXITED, False, 1, False, pod_reason or "Failed"
    if phase == "Succeeded":
        return ReplicaState.EXITED, False, 0, False, ""
    if state is not None and state.running is not None:
        return ReplicaState.RUNNING, True, None, False, ""
    if state is not None and state.waiting is not None and state.waiting.reason:
        waiting = state.waiting
        error = f"{waiting.reason}: {waiting.message}" if waiting.message else str(waiting.reason)
        return ReplicaState.CREATED, False, None, False, error
    return ReplicaState.CREATED, False, None, False, pod_reason


def observation_of(pod: k8s.V1Pod) -> ReplicaObservation:
    """The replica a gpuyard pod runs, as the reconcile loop reads it."""
    meta = pod.metadata or k8s.V1ObjectMeta()
    labels = meta.labels or {}
    state, running, exit_code, oom, error = _state_of(pod)
    status = pod.status or k8s.V1PodStatus()
    mine = [c for c in status.container_statuses or [] if c.name == CONTAINER]
    started = finished = None
    if mine and mine[0].state is not None:
        if mine[0].state.running is not None:
            started = mine[0].state.running.started_at
        if mine[0].state.terminated is not None:
            started = mine[0].state.terminated.started_at
            finished = mine[0].state.terminated.finished_at
    waiting_reason = error.split(":", 1)[0] if state is ReplicaState.CREATED else ""
    try:
        replica = int(labels.get(REPLICA_LABEL, "0"))
    except ValueError:
        replica = 0
    return ReplicaObservation(
        container_id=f"{meta.namespace}/{meta.name}",
        workload_id=labels.get(WORKLOAD_LABEL, ""),
        replica=replica,
        state=state,
        state_text=status.phase or "",
        running=running,
        image=(pod.spec.containers[0].image or "") if pod.spec and pod.spec.containers else "",
        exit_code=exit_code,
        oom_killed=oom,
        error=error,
        cannot_start=waiting_reason in CANNOT_START,
        created_at=meta.creation_timestamp,
        started_at=started,
        finished_at=finished,
        labels=_extra_labels(meta.annotations or {}),
    )


def _extra_labels(annotations: Mapping[str, str]) -> dict[str, str]:
    try:
        labels = json.loads(annotations.get(LABELS_ANNOTATION) or "{}")
    except ValueError:
        return {}
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


# -- nodes ---------------------------------------------------------------------------------


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


# -- the runtime ---------------------------------------------------------------------------


class NotForKubernetes(RuntimeFailure):
    """What a kubernetes replica answers for what this runtime does not do (yet): 409."""

    title = "Not supported by the kubernetes runtime"

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.status = 409
        self.detail = what
        self.errors = []


def _not_supported(what: str) -> NoReturn:
    raise NotForKubernetes(what)


class KubernetesRuntime(WithoutWorkspaceFiles, WithoutHostImages):
    """Runs replicas as pods on the nodes of kubernetes clusters."""

    starts_instantly = False
    runs_containers = True
    reports_inventory = True
    #: A pod is created long before it runs (its node pulls the image first).
    running_when_observed = True
    #: CPU and memory through the pod's resize subresource (Kubernetes 1.33 and later).
    resizes_in_place = True
    #: Its servers are the cluster's nodes: a registration gives no connection field.
    connection_fields: tuple[str, ...] = ()

    def refuse_workspace_files(self) -> NoReturn:
        _not_supported("kubernetes pods have no workspace files in gpuyard yet")

    def refuse_host_images(self) -> NoReturn:
        _not_supported("a kubernetes node's images are its kubelet's")

    def __init__(self, clients: KubeClientSource, default_namespace: str = "gpuyard") -> None:
        """``clients``: API clients by cluster id (services build them from kubeconfigs);
        ``default_namespace``: where the pods of a workload with no team go."""
        self._clients = clients
        self.default_namespace = default_namespace
        #: (cluster id, namespace) known to exist: created or seen once.
        self._namespaces: set[tuple[str, str]] = set()
        #: Each cluster's nodes and pods, kept by list then watch (``cluster_nodes``).
        self._views: dict[str, ClusterView] = {}
        #: cluster id -> (failures in a row, monotonic time before which not to retry).
        self._backoff: dict[str, tuple[int, float]] = {}
        #: How many times a watch's version had expired and the cluster was listed again.
        self.relists = 0

    def _api(self, cluster_id: str) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self._clients.api_client(cluster_id))

    def _node_api(self, server_name: str) -> tuple[str, k8s.CoreV1Api]:
        cluster_id = self._clients.cluster_of(server_name)
        return cluster_id, self._api(cluster_id)

    # -- registration ------------------------------------------------------------------

    def check_registration(self, fields: RegistrationFields) -> None:
        """Refused, always: a kubernetes cluster's servers are its nodes."""
        raise InvalidInput.for_field(
            "cluster_id",
            "nodes come from the cluster: a kubernetes cluster's servers are its nodes, "
            "which gpuyard registers itself from the cluster's API server",
        )

    def reach(self, cluster_id: str, connection: Mapping[str, str]) -> ReachedServer:
        self.check_registration(RegistrationFields(None, None, 0, None, {}))
        raise AssertionError("unreachable")

    def ports_host(self, endpoint: ServerEndpoint) -> str | None:
        return None  # pods publish no host ports: their ports are the pod's own

    # -- pods --------------------------------------------------------------------------

    def ensure_namespace(self, cluster_id: str, namespace: str) -> None:
        """Create ``namespace`` (labelled as gpuyard's) unless it exists."""
        if (cluster_id, namespace) in self._namespaces:
            return
        api = self._api(cluster_id)
        try:
            with calling(f"namespace {namespace}"):
                api.read_namespace(namespace, _request_timeout=TIMEOUT)
        except KubeFailure as exc:
            if exc.status == 403:
                # Not allowed to read namespaces (RBAC scoped to them): it exists, or the
                # pod's create says it does not.
                self._namespaces.add((cluster_id, namespace))
                return
            if exc.status != 404:
                raise
            body = k8s.V1Namespace(
                api_version="v1",
                kind="Namespace",
                metadata=k8s.V1ObjectMeta(name=namespace, labels={MANAGED_BY: "gpuyard"}),
            )
            try:
                with calling(f"create namespace {namespace}"):
                    api.create_namespace(body, _request_timeout=TIMEOUT)
            except KubeFailure as created:
                if created.status != 409:  # created meanwhile: there it is
                    raise
        self._namespaces.add((cluster_id, namespace))

    def start(self, spec: ReplicaSpec) -> str:
        """Create the replica's pod (idempotent: the pod's name is the workload's and the
        replica's, so a second create finds the first)."""
        cluster_id, api = self._node_api(spec.server_name)
        namespace = spec.namespace or self.default_namespace
        pod = pod_for(spec, namespace)
        name = pod.metadata.name if pod.metadata and pod.metadata.name else ""
        for attempt in (1, 2):
            self.ensure_namespace(cluster_id, namespace)
            try:
                with calling(f"create pod {namespace}/{name}"):
                    api.create_namespaced_pod(namespace, pod, _request_timeout=TIMEOUT)
            except KubeFailure as exc:
                if exc.status == 409:  # already created (a retry, or two starters racing)
                    self._same_node_or_wait(api, namespace, name, spec.server_name)
                    break
                if exc.status == 404 and attempt == 1:
                    # The namespace was deleted from outside since we saw it: again.
                    self._namespaces.discard((cluster_id, namespace))
                    continue
                raise
            break
        return make_handle(cluster_id, namespace, name)

    def _same_node_or_wait(
        self, api: k8s.CoreV1Api, namespace: str, name: str, node_name: str
    ) -> None:
        """The pod of that name is this replica's on ``node_name``; KubeUnreachable (the
        starter tries again later) while an earlier one, bound elsewhere, is still there:
        a re-queued replica placed on another node waits for its old pod to go."""
        with calling(f"read pod {namespace}/{name}"):
            existing = api.read_namespaced_pod(name, namespace, _request_timeout=TIMEOUT)
        bound = existing.spec.node_name if existing.spec else None
        if bound != node_name:
            raise KubeUnreachable(
                f"pod {namespace}/{name} of an earlier placement (node {bound}) is still "
                "being deleted"
            )

    def stop(self, handle: str, grace_period_s: float) -> None:
        """Delete the pod with ``grace_period_s`` to exit, and wait (a little longer than
        that) until it is gone, as a container's stop does: the ``remove`` that follows
        must not cut the grace short. A pod already gone is stopped."""
        grace_s = max(math.ceil(grace_period_s), 0)
        if not self._delete(handle, grace_s):
            return
        deadline = time.monotonic() + grace_s + STOP_MARGIN_S
        while time.monotonic() < deadline:
            if self.inspect(handle) is None:
                return
            time.sleep(STOP_POLL_S)

    def _delete(self, handle: str, grace_s: int) -> bool:
        cluster_id, namespace, name = split_handle(handle)
        try:
            with calling(f"delete pod {namespace}/{name}"):
                self._api(cluster_id).delete_namespaced_pod(
                    name, namespace, grace_period_seconds=grace_s, _request_timeout=TIMEOUT
                )
        except KubeFailure as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def resize(self, handle: str, cpu_milli: int, ram_mib: int) -> bool:
        """Patch the pod's ``resize`` subresource to the new CPU and memory (requests ==
        limits); False when the cluster has none (404: before Kubernetes 1.33) or refuses
        it (an infeasible size, a policy): the caller replaces the pod."""
        cluster_id, namespace, name = split_handle(handle)
        resources = {"cpu": f"{cpu_milli}m", "memory": f"{ram_mib}Mi"}
        container = {"name": CONTAINER, "resources": {"requests": resources, "limits": resources}}
        body = {"spec": {"containers": [container]}}
        try:
            with calling(f"resize pod {namespace}/{name}"):
                self._api(cluster_id).patch_namespaced_pod_resize(
                    name, namespace, body, _request_timeout=TIMEOUT
                )
        except KubeUnreachable:
            raise
        except KubeFailure:
            return False
        return True

    def relabel(self, handle: str, labels: Mapping[str, str]) -> None:
        cluster_id, namespace, name = split_handle(handle)
        api = self._api(cluster_id)
        with calling(f"read pod {namespace}/{name}"):
            pod = api.read_namespaced_pod(name, namespace, _request_timeout=TIMEOUT)
        merged = {**_extra_labels((pod.metadata.annotations if pod.metadata else None) or {})}
        merged.update(labels)
        body = {
            "metadata": {"annotations": {LABELS_ANNOTATION: json.dumps(merged, sort_keys=True)}}
        }
        with calling(f"label pod {namespace}/{name}"):
            api.patch_namespaced_pod(name, namespace, body, _request_timeout=TIMEOUT)

    def remove(self, handle: str) -> bool:
        """Delete the pod at once; False when it was already gone."""
        return self._delete(handle, 0)

    def inspect(self, handle: str) -> ReplicaObservation | None:
        cluster_id, namespace, name = split_handle(handle)
        try:
            with calling(f"read pod {namespace}/{name}"):
                pod = self._api(cluster_id).read_namespaced_pod(
                    name, namespace, _request_timeout=TIMEOUT
                )
        except KubeFailure as exc:
            if exc.status == 404:
                return None
            raise
        return observation_of(pod)

    def containers(self, server_name: str) -> list[ReplicaObservation]:
        """Every gpuyard pod bound to the node ``server_name``, ended ones too."""
        _cluster_id, api = self._node_api(server_name)
        with calling(f"list pods of node {server_name}"):
            pods = api.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={server_name}",
                label_selector=MANAGED_BY_GPUYARD,
                _request_timeout=TIMEOUT,
            )
        return [observation_of(p) for p in pods.items if is_gpuyards(p)]

    def handle_of(self, server_name: str, container_id: str) -> str:
        return f"{self._clients.cluster_of(server_name)}/{container_id}"

    def container_id(self, handle: str) -> str:
        _cluster_id, namespace, name = split_handle(handle)
        return f"{namespace}/{name}"

    # -- nodes -------------------------------------------------------------------------

    def inventory(self, server_name: str, *, retry: bool = True) -> HostInventory:
        """What gpuyard may place on the node (its allocatable less foreign pods')."""
        _cluster_id, api = self._node_api(server_name)
        with calling(f"read node {server_name}"):
            node = api.read_node(server_name, _request_timeout=TIMEOUT)
            pods = api.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={server_name}", _request_timeout=TIMEOUT
            )
        foreign = foreign_requests(pods.items).get(server_name, Requests())
        return node_inventory(node, foreign)

    def cluster_nodes(self, cluster_id: str, watch_s: float = 1.0) -> list[KubeNode]:
        """Every node of the cluster with what gpuyard may place there.

        Kept per cluster in this process by list then watch: the first call lists the
        nodes and every pod (two calls); later ones watch both from the versions they
        had, for up to ``watch_s`` seconds each, and apply what changed. A version the
        API server no longer has (410 Gone) is listed again at once; any other failure
        drops what was kept and backs off (doubling, up to a minute) before listing
        again: ``KubeUnreachable`` meanwhile."""
        now = time.monotonic()
        failures, not_before = self._backoff.get(cluster_id, (0, 0.0))
        if now < not_before:
            raise KubeUnreachable(
                f"cluster {cluster_id}: backing off after {failures} failed lists or watches"
            )
        try:
            view = self._views.get(cluster_id)
            if view is None:
                view = self._list_cluster(cluster_id)
            else:
                try:
                    view.watch(self._api(cluster_id), watch_s)
                except KubeFailure as exc:
                    if exc.status != 410:
                        raise
                    self.relists += 1
                    view = self._list_cluster(cluster_id)
        except Exception:
            self._views.pop(cluster_id, None)
            delay = min(BACKOFF_S * 2**failures, BACKOFF_MAX_S)
            self._backoff[cluster_id] = (failures + 1, time.monotonic() + delay)
            raise
        self._backoff.pop(cluster_id, None)
        return view.nodes()

    def _list_cluster(self, cluster_id: str) -> ClusterView:
        view = ClusterView.listed(self._api(cluster_id))
        self._views[cluster_id] = view
        return view

    def forget_cluster(self, cluster_id: str) -> None:
        """Drop what was kept of a cluster (deleted, or its kubeconfig changed)."""
        self._views.pop(cluster_id, None)
        self._backoff.pop(cluster_id, None)

    def estimate_usage(self, load: ServerLoad, at: datetime) -> UsageReading | None:
        return None  # no usage readings from the API server (metrics-server: later)

    def replica_usage(self, query: ReplicaUsageQuery, at: datetime) -> ReplicaUsage | None:
        return None  # no per-pod usage from the API server: its workloads are never culled

    def logs(
        self, handle: str, *, tail: int | None = None, follow: bool = False
    ) -> AbstractContextManager[Iterator[bytes]]:
        return self._logs(handle, tail, follow)

    @contextmanager
    def _logs(self, handle: str, tail: int | None, follow: bool) -> Iterator[Iterator[bytes]]:
        cluster_id, namespace, name = split_handle(handle)
        timeout = None if follow else TIMEOUT  # following: until the reader leaves
        with calling(f"logs of pod {namespace}/{name}"):
            response: Any = self._api(cluster_id).read_namespaced_pod_log(
                name,
                namespace,
                container=CONTAINER,
                follow=follow,
                tail_lines=tail,
                _preload_content=False,
                _request_timeout=timeout,
            )
        try:
            yield _chunks(response)
        finally:
            _close(response)

    def exec_target(self, handle: str, cmd: Iterable[str] | None = None) -> ExecTarget:
        _not_supported("exec into a kubernetes pod is not available yet")

    # -- workspace files and images: not for pods (yet) ---------------------------------


def _chunks(response: Any) -> Iterator[bytes]:
    stream: Callable[..., Iterator[bytes]] | None = getattr(response, "stream", None)
    if stream is None:  # an answer read whole
        data = getattr(response, "data", b"")
        yield data if isinstance(data, bytes) else str(data).encode()
        return
    yield from stream(4096)


def _close(response: Any) -> None:
    for name in ("release_conn", "close"):
        method = getattr(response, name, None)
        if callable(method):
            method()
