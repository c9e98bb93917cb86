"""Clusters: a named group of servers with one runtime kind."""

from __future__ import annotations

import yaml
from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound
from gpuyard.domain.fleet_records import Cluster
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.fleet import (
    add_cluster,
    cluster_name_taken,
    cluster_record,
    cluster_row,
    find_clusters,
    lock_cluster_row,
    server_name_taken,
)
from gpuyard.store.fleet_tables import ClusterRow

#: A kubeconfig is a small YAML file; anything this large is a mistake.
MAX_KUBECONFIG_BYTES = 256 * 1024


def create_cluster(
    ctx: ServiceContext,
    caller: Caller,
    name: str,
    kind: ClusterKind,
    kubeconfig: str | None = None,
) -> Cluster:
    """Create a cluster. A kubernetes cluster's kubeconfig is stored encrypted and never
    returned by the API."""
    if kubeconfig is not None:
        if kind is not ClusterKind.KUBERNETES:
            raise InvalidInput.for_field("kubeconfig", "only kubernetes clusters take one")
        if not kubeconfig.strip() or len(kubeconfig.encode()) > MAX_KUBECONFIG_BYTES:
            raise InvalidInput.for_field("kubeconfig", "must be a non-empty kubeconfig file")
        _check_kubeconfig(kubeconfig)
    now = ctx.now()
    with ctx.db.write() as session:
        if cluster_name_taken(session, name):
            raise Conflict(f"a cluster named {name!r} already exists")
        encrypted = ctx.secret_box.encrypt(kubeconfig) if kubeconfig else None
        cluster = add_cluster(session, name, kind.value, encrypted, now)
        details = {"name": name, "kind": kind.value, "kubeconfig_stored": kubeconfig is not None}
        record_audit(
            session, AuditActor.of(caller), "cluster.create", "cluster", cluster.id, now, details
        )
    return cluster


def _check_kubeconfig(kubeconfig: str) -> None:
    """422 on ``kubeconfig`` unless it reads as one: a YAML mapping (its clusters, users
    and contexts are checked when the runtime first builds a client from it)."""
    try:
        document = yaml.safe_load(kubeconfig)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidInput.for_field("kubeconfig", f"is not valid YAML{where}") from exc
    if not isinstance(document, dict):
        raise InvalidInput.for_field("kubeconfig", "must be a kubeconfig file: a YAML mapping")


def cluster_kubeconfig(ctx: ServiceContext, cluster_id: str) -> str | None:
    """The decrypted kubeconfig, for the kubernetes runtime (never for the API)."""
    with ctx.db.read() as session:
        row = _existing_cluster(session, cluster_id)
        encrypted = row.kubeconfig_enc
    return ctx.secret_box.decrypt(encrypted) if encrypted else None


def list_clusters(ctx: ServiceContext, limit: int, offset: int) -> tuple[list[Cluster], int]:
    """Clusters, newest first, with the total count."""
    with ctx.db.read() as session:
        return find_clusters(session, limit, offset)


def get_cluster(ctx: ServiceContext, cluster_id: str) -> Cluster:
    """The cluster (NotFound when there is none)."""
    with ctx.db.read() as session:
        return cluster_record(_existing_cluster(session, cluster_id))


def _existing_cluster(session: Session, cluster_id: str) -> ClusterRow:
    row = cluster_row(session, cluster_id)
    if row is None:
        raise NotFound.for_object("cluster", cluster_id)
    return row


def cluster_of_kind(
    session: Session, cluster_id: str, kind: ClusterKind, field: str, wrong_kind: str
) -> Cluster:
    """The cluster a new server joins; 422 when it is missing or of another kind
    (``wrong_kind`` is the message, on ``field``, that says which shape is expected).
    Call it in the write that adds the server: the cluster's row stays locked against a
    concurrent delete until it commits."""
    cluster = joined_cluster(session, cluster_id)
    if cluster.kind != kind.value:
        raise InvalidInput.for_field(
            field, f"cluster {cluster.name!r} is a {cluster.kind} cluster; {wrong_kind}"
        )
    return cluster_record(cluster)


def joined_cluster(session: Session, cluster_id: str) -> ClusterRow:
    """The row of the cluster a write is about to name (a new server's), locked against a
    concurrent delete until the transaction ends; 422 on ``cluster_id`` when it is gone."""
    row = lock_cluster_row(session, cluster_id, exclusive=False)
    if row is None:
        raise InvalidInput.for_field("cluster_id", f"cluster {cluster_id!r} does not exist")
    return row


def ensure_server_name_free(session: Session, name: str) -> None:
    if server_name_taken(session, name):
        raise Conflict(f"a server named {name!r} already exists")
