"""API clients of kubernetes clusters, built from their kubeconfigs and cached.

A client is keyed by the cluster's id and rebuilt when its (encrypted) kubeconfig
changes. A kubernetes cluster registered without a kubeconfig is reached with the
in-cluster service account (gpuyard running as a pod). Reading the rows is a short read
transaction of its own; every call a client makes is network I/O and must happen outside
any transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gpuyard.auth.encryption import SecretBox
from gpuyard.domain.errors import NotFound
from gpuyard.domain.server_state import ClusterKind
from gpuyard.runtimes.kubernetes import KubeUnreachable
from gpuyard.store import fleet
from gpuyard.store.database import Database

#: The cache key of a cluster reached with the in-cluster service account.
IN_CLUSTER = "in-cluster"
# The client's config loaders ship untyped.
_load_incluster = cast(Callable[..., None], k8s_config.load_incluster_config)
_from_config_dict = cast(Callable[..., k8s.ApiClient], k8s_config.new_client_from_config_dict)


@dataclass(frozen=True)
class _Entry:
    kubeconfig_enc: str
    client: k8s.ApiClient


def build_api_client(kubeconfig: str | None) -> k8s.ApiClient:
    """A client from a kubeconfig's text (None: the in-cluster service account); no I/O
    beyond reading the service account's files."""
    if kubeconfig is None:
        configuration = k8s.Configuration()
        _load_incluster(client_configuration=configuration)
        return k8s.ApiClient(configuration)
    document = yaml.safe_load(kubeconfig)
    if not isinstance(document, dict):
        raise ValueError("the kubeconfig is not a YAML mapping")
    return _from_config_dict(document, persist_config=False)


class KubeClients:
    """``api_client(cluster_id)`` and ``cluster_of(server_name)`` for the kubernetes
    runtime (``ServiceContext.runtimes``); thread-safe."""

    def __init__(self, db: Database, secret_box: SecretBox) -> None:
        self._db = db
        self._box = secret_box
        self._lock = threading.Lock()
        self._clients: dict[str, _Entry] = {}

    def api_client(self, cluster_id: str) -> k8s.ApiClient:
        """The client of the cluster's API server (NotFound when there is no such
        kubernetes cluster; KubeUnreachable when its kubeconfig builds no client)."""
        with self._db.read() as session:
            row = fleet.cluster_row(session, cluster_id)
            if row is None or row.kind != ClusterKind.KUBERNETES.value:
                raise NotFound.for_object("kubernetes cluster", cluster_id)
            encrypted = row.kubeconfig_enc or IN_CLUSTER
        with self._lock:
            entry = self._clients.get(cluster_id)
            if entry and entry.kubeconfig_enc == encrypted:
                return entry.client
            if entry:
                _close(entry.client)
            try:
                text = None if encrypted == IN_CLUSTER else self._box.decrypt(encrypted)
                api_client = build_api_client(text)
            except Exception as exc:  # a kubeconfig no key opens, or no client takes
                # The cluster's fault, not its workloads': the loops treat it as an API
                # server that does not answer (health counts misses, the starter waits).
                detail = f"cluster {cluster_id}: no client can be built from its kubeconfig"
                raise KubeUnreachable(f"{detail}: {type(exc).__name__}") from exc
            self._clients[cluster_id] = _Entry(encrypted, api_client)
            return api_client

    def cluster_of(self, server_name: str) -> str:
        """The cluster of the server ``server_name`` (NotFound when there is none)."""
        with self._db.read() as session:
            cluster_id = fleet.server_cluster_id(session, server_name)
        if cluster_id is None:
            raise NotFound.for_object("server", server_name)
        return cluster_id

    def close(self) -> None:
        with self._lock:
            for entry in self._clients.values():
                _close(entry.client)
            self._clients.clear()


def _close(api_client: k8s.ApiClient) -> None:
    cast(Any, api_client).close()  # untyped in the client
