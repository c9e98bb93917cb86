"""Clusters: a named group of servers with one runtime kind."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.fleet_tables import ClusterRow, ServerRow

#: A kubeconfig is a small YAML file; anything this large is a mistake.
MAX_KUBECONFIG_BYTES = 256 * 1024


def create_cluster(
    ctx: ServiceContext,
    caller: Caller,
    name: str,
    kind: ClusterKind,
    kubeconfig: str | None = None,
) -> ClusterRow:
    """Create a cluster. A kubernetes cluster's kubeconfig is stored encrypted and never
    returned by the API."""
    if kubeconfig is not None:
        if kind is not ClusterKind.KUBERNETES:
            raise InvalidInput.for_field("kubeconfig", "only kubernetes clusters take one")
        if not kubeconfig.strip() or len(kubeconfig.encode()) > MAX_KUBECONFIG_BYTES:
            raise InvalidInput.for_field("kubeconfig", "must be a non-empty kubeconfig file")
    now = ctx.now()
    with ctx.db.write() as session:
        if session.scalar(select(ClusterRow.id).where(ClusterRow.name == name)):
            raise Conflict(f"a cluster named {name!r} already exists")
        row = ClusterRow(
            name=name,
            kind=kind.value,
            kubeconfig_enc=ctx.secret_box.encrypt(kubeconfig) if kubeconfig else None,
            created_at=now,
        )
        session.add(row)
        session.flush()
        details = {"name": name, "kind": kind.value, "kubeconfig_stored": kubeconfig is not None}
        record_audit(
            session, AuditActor.of(caller), "cluster.create", "cluster", row.id, now, details
        )
    return row


def cluster_kubeconfig(ctx: ServiceContext, cluster_id: str) -> str | None:
    """The decrypted kubeconfig, for the kubernetes runtime (never for the API)."""
    row = get_cluster(ctx, cluster_id)
    return ctx.secret_box.decrypt(row.kubeconfig_enc) if row.kubeconfig_enc else None


def list_clusters(ctx: ServiceContext, limit: int, offset: int) -> tuple[list[ClusterRow], int]:
    with ctx.db.read() as session:
        count = session.scalar(select(func.count()).select_from(ClusterRow)) or 0
        rows = session.scalars(
            select(ClusterRow).order_by(ClusterRow.created_at.desc()).limit(limit).offset(offset)
        ).all()
        return list(rows), count


def get_cluster(ctx: ServiceContext, cluster_id: str) -> ClusterRow:
    with ctx.db.read() as session:
        row = session.get(ClusterRow, cluster_id)
        if row is None:
            raise NotFound.for_object("cluster", cluster_id)
        return row


def cluster_of_kind(
    session: Session, cluster_id: str, kind: ClusterKind, field: str, wrong_kind: str
) -> ClusterRow:
    """The cluster a new server joins; 422 when it is missing or of another kind
    (``wrong_kind`` is the message, on ``field``, that says which shape is expected)."""
    cluster = session.get(ClusterRow, cluster_id)
    if cluster is None:
        raise InvalidInput.for_field("cluster_id", f"cluster {cluster_id!r} does not exist")
    if cluster.kind != kind.value:
        raise InvalidInput.for_field(
            field, f"cluster {cluster.name!r} is a {cluster.kind} cluster; {wrong_kind}"
        )
    return cluster


def ensure_server_name_free(session: Session, name: str) -> None:
    if session.scalar(select(ServerRow.id).where(ServerRow.name == name)):
        raise Conflict(f"a server named {name!r} already exists")
