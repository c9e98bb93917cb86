"""The pods gpuyard writes (one per replica, bound to its node) and how it reads them
back into ``ReplicaObservation`` values; runtime handles."""

from __future__ import annotations

import json
from collections.abc import Mapping

from kubernetes import client as k8s

from gpuyard.domain.kube_names import pod_name
from gpuyard.domain.runtime_records import ReplicaObservation, ReplicaState
from gpuyard.runtimes.base import ReplicaSpec

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
        labels=extra_labels(meta.annotations or {}),
    )


def extra_labels(annotations: Mapping[str, str]) -> dict[str, str]:
    try:
        labels = json.loads(annotations.get(LABELS_ANNOTATION) or "{}")
    except ValueError:
        return {}
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
