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

Modules: ``calls`` (timeouts, failures), ``pods`` (the pods written and read back,
handles), ``nodes`` (node inventories, the list-then-watch view of a cluster), ``streams``
(logs, and exec over the ``channel.k8s.io`` WebSocket subprotocol translated into the
agent's exec protocol the relay speaks), ``files`` (the workspace volume's files over exec:
``tar`` as ``kubectl cp``), ``runtime`` (``KubernetesRuntime``). Images are the
kubelet's, not gpuyard's (409).
"""

from gpuyard.runtimes.kubernetes.calls import (
    TIMEOUT,
    KubeFailure,
    KubeUnreachable,
    NotForKubernetes,
    calling,
)
from gpuyard.runtimes.kubernetes.nodes import (
    ClusterView,
    KubeNode,
    Requests,
    foreign_requests,
    holds_resources,
    is_gpuyards,
    node_inventory,
    pod_requests,
    requests_of,
    unschedulable_reason,
)
from gpuyard.runtimes.kubernetes.pods import (
    CANNOT_START,
    CONTAINER,
    GPU_MEMORY_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    LABELS_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_GPUYARD,
    REPLICA_LABEL,
    WORKLOAD_LABEL,
    WORKSPACE_VOLUME,
    make_handle,
    observation_of,
    pod_for,
    resources_of,
    split_handle,
)
from gpuyard.runtimes.kubernetes.runtime import KubeClientSource, KubernetesRuntime

__all__ = [
    "CANNOT_START",
    "CONTAINER",
    "GPU_MEMORY_LABEL",
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "LABELS_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_GPUYARD",
    "REPLICA_LABEL",
    "TIMEOUT",
    "WORKLOAD_LABEL",
    "WORKSPACE_VOLUME",
    "ClusterView",
    "KubeClientSource",
    "KubeFailure",
    "KubeNode",
    "KubeUnreachable",
    "KubernetesRuntime",
    "NotForKubernetes",
    "Requests",
    "calling",
    "foreign_requests",
    "holds_resources",
    "is_gpuyards",
    "make_handle",
    "node_inventory",
    "observation_of",
    "pod_for",
    "pod_requests",
    "requests_of",
    "resources_of",
    "split_handle",
    "unschedulable_reason",
]
