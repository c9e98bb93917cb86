"""``KubernetesRuntime``: replicas as pods on the nodes of kubernetes clusters (see the
package's docstring)."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, NoReturn, Protocol

from kubernetes import client as k8s

from gpuyard.domain.culling import ReplicaUsage, ReplicaUsageQuery
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.replica_access import ExecTarget, WorkspaceFile, WorkspaceListing
from gpuyard.domain.runtime_records import (
    HostInventory,
    ReachedServer,
    ReplicaObservation,
    ServerEndpoint,
)
from gpuyard.domain.usage import ServerLoad, UsageReading
from gpuyard.runtimes.base import (
    RegistrationFields,
    ReplicaSpec,
    WithoutHostImages,
)
from gpuyard.runtimes.kubernetes import files, metrics, streams
from gpuyard.runtimes.kubernetes.calls import (
    TIMEOUT,
    KubeFailure,
    KubeUnreachable,
    calling,
    not_supported,
)
from gpuyard.runtimes.kubernetes.nodes import (
    ClusterView,
    KubeNode,
    Requests,
    foreign_requests,
    is_gpuyards,
    node_inventory,
    requests_of,
)
from gpuyard.runtimes.kubernetes.pods import (
    CONTAINER,
    LABELS_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_GPUYARD,
    WORKLOAD_LABEL,
    extra_labels,
    make_handle,
    observation_of,
    pod_for,
    split_handle,
)

#: What a workload id looks like (it goes into a label selector).
_WORKLOAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
#: The first wait after a failed list or watch of a cluster, doubled each failure up to
#: the second.
BACKOFF_S = 1.0
#: A stop waits for the pod to be gone this much past its grace period, looking this often.
STOP_MARGIN_S = 10.0
STOP_POLL_S = 0.5
BACKOFF_MAX_S = 60.0


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


class KubernetesRuntime(WithoutHostImages):
    """Runs replicas as pods on the nodes of kubernetes clusters."""

    starts_instantly = False
    runs_containers = True
    reports_inventory = True
    #: A pod is created long before it runs (its node pulls the image first).
    running_when_observed = True
    #: CPU and memory through the pod's resize subresource (Kubernetes 1.33 and later).
    resizes_in_place = True
    #: Device plugins hand out whole GPUs: no share of one.
    whole_gpus_only = True
    #: A node's capacity is its allocatable less foreign pods' requests.
    capacity_shared = True
    #: Its servers are the cluster's nodes: a registration gives no connection field.
    connection_fields: tuple[str, ...] = ()

    def refuse_host_images(self) -> NoReturn:
        not_supported("a kubernetes node's images are its kubelet's")

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
        merged = {**extra_labels((pod.metadata.annotations if pod.metadata else None) or {})}
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
        usage = metrics.node_usage(api.api_client, node)  # None: no metrics-server reading
        return replace(node_inventory(node, foreign), usage=usage)

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
        return None  # real readings instead: metrics-server's, on the health probe's inventory

    def replica_usage(self, query: ReplicaUsageQuery, at: datetime) -> ReplicaUsage | None:
        """The pod's CPU share from metrics-server's PodMetrics; why there is no signal
        where there will be none (no metrics-server, a GPU pod): ``metrics.pod_usage``."""
        if query.gpus:
            return ReplicaUsage(no_signal=metrics.GPU_POD)
        if not query.handle:
            return ReplicaUsage()  # no pod yet: no reading this time
        cluster_id, namespace, name = split_handle(query.handle)
        return metrics.pod_usage(
            self._clients.api_client(cluster_id),
            namespace,
            name,
            query.workload_id,
            query.cpu_cores,
        )

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
            yield streams.chunks(response)
        finally:
            streams.close_response(response)

    def exec_target(
        self, handle: str, cmd: Iterable[str] | None = None, tty: bool = True
    ) -> ExecTarget:
        """An exec session in the pod's replica container (``cmd``, else a shell), opened
        by the relay over the API server's ``exec`` WebSocket; 409 unless the container
        runs now."""
        cluster_id, namespace, name = split_handle(handle)
        api_client = self._clients.api_client(cluster_id)
        with calling(f"read pod {namespace}/{name}"):
            pod = k8s.CoreV1Api(api_client).read_namespaced_pod(
                name, namespace, _request_timeout=TIMEOUT
            )
        _require_running(pod, "exec")
        configuration = api_client.configuration
        return streams.exec_target(configuration, namespace, name, list(cmd or []), tty)

    # -- workspace files (over exec in the pod: runtimes/kubernetes/files.py) ----------

    def _workspace(
        self, server_name: str, workload_id: str
    ) -> tuple[k8s.Configuration, files.WorkspacePod]:
        """The running pod of the workload's first replica on the node, and its API
        client's configuration."""
        if not _WORKLOAD_ID.fullmatch(workload_id):
            raise InvalidInput.for_field("workload_id", "not a workload id")
        _cluster_id, api = self._node_api(server_name)
        with calling(f"list pods of workload {workload_id}"):
            pods = api.list_pod_for_all_namespaces(
                label_selector=f"{MANAGED_BY_GPUYARD},{WORKLOAD_LABEL}={workload_id}",
                field_selector=f"spec.nodeName={server_name}",
                _request_timeout=TIMEOUT,
            )
        mine = sorted(
            (p for p in pods.items if is_gpuyards(p)), key=lambda p: observation_of(p).replica
        )
        if not mine:
            raise KubeFailure(
                409, f"workload {workload_id} has no pod on node {server_name}", title="No pod"
            )
        pod = mine[0]
        _require_running(pod, "files")
        container = (pod.spec.containers if pod.spec else None) or []
        resources = container[0].resources if container else None
        quota_mib = requests_of(resources.limits if resources else None).storage_mib
        return api.api_client.configuration, files.workspace_pod(pod, quota_mib * 1024 * 1024)

    def list_files(self, server_name: str, workload_id: str, path: str = "") -> WorkspaceListing:
        configuration, pod = self._workspace(server_name, workload_id)
        return files.list_dir(configuration, pod, path)

    def download_file(self, server_name: str, workload_id: str, path: str) -> bytes:
        configuration, pod = self._workspace(server_name, workload_id)
        return files.download(configuration, pod, path)

    def upload_file(
        self,
        server_name: str,
        workload_id: str,
        path: str,
        content: bytes | Iterable[bytes],
        size: int | None = None,
    ) -> WorkspaceFile:
        configuration, pod = self._workspace(server_name, workload_id)
        return files.upload(configuration, pod, path, content, size)

    def delete_file(self, server_name: str, workload_id: str, path: str) -> None:
        configuration, pod = self._workspace(server_name, workload_id)
        files.delete(configuration, pod, path)


def _require_running(pod: k8s.V1Pod, what: str) -> None:
    """409 unless the pod's replica container runs now."""
    observed = observation_of(pod)
    if observed.running:
        return
    meta = pod.metadata or k8s.V1ObjectMeta()
    why = f": {observed.error}" if observed.error else ""
    raise KubeFailure(
        409,
        f"pod {meta.namespace}/{meta.name} is not running ({observed.state_text or 'Pending'}"
        f"{why}); {what} once it runs",
        title="Pod not running",
    )
