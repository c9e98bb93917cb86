"""Logs, exec and files of docker workloads, through the control plane only.

Each call resolves the workload and checks the caller's permission in a short read
transaction, then talks to the agent of the server it runs on outside any transaction.
The agent's refusals (a path outside the workspace, a symbolic link, an upload too large,
a container gone) are relayed with their status and message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gpuyard.agent.models import FileEntry, FilesPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import Conflict, FieldError, NotFound, UpstreamProblem
from gpuyard.runtimes.docker import AgentClient, AgentError, ExecTarget, split_handle
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.submission import load_workload
from gpuyard.services.workloads.uploads import SpooledUpload
from gpuyard.store.fleet_tables import ClusterRow, ServerRow


@dataclass(frozen=True)
class Placement:
    """Where one replica of a docker workload runs."""

    workload_id: str
    server_name: str
    handle: str | None


def docker_placement(
    ctx: ServiceContext, caller: Caller, workload_id: str, permission: Permission, replica: int = 0
) -> Placement | None:
    """The docker placement of ``replica``, or None for a workload that runs elsewhere
    (simulated) or nowhere now. Checks the caller may exercise ``permission`` on it."""
    with ctx.db.read() as session:
        row = load_workload(session, caller, workload_id, permission)
        allocation = next((a for a in row.allocations if a.replica == replica), None)
        if allocation is None:
            return None
        server = session.get(ServerRow, allocation.server_id)
        cluster = session.get(ClusterRow, server.cluster_id) if server else None
        if server is None or cluster is None or cluster.kind != "docker":
            return None
        return Placement(row.id, server.name, allocation.container_id)


def _require(placement: Placement | None, what: str) -> Placement:
    if placement is None:
        raise Conflict(f"{what} needs a workload running on a docker server")
    return placement


def _container(placement: Placement | None, what: str) -> tuple[str, str]:
    found = _require(placement, what)
    if found.handle is None:
        raise Conflict(f"the container is not created yet; {what} once it is running")
    return split_handle(found.handle)


def relay(exc: AgentError) -> UpstreamProblem:
    """The agent's problem as the caller's (never the agent's token or URL)."""
    errors = [FieldError(e.get("field", "path"), e.get("message", "")) for e in exc.errors]
    return UpstreamProblem(exc.status, exc.detail, errors)


def _client(ctx: ServiceContext, server_name: str) -> AgentClient:
    try:
        return ctx.agents.client_for(server_name)
    except NotFound as exc:
        raise Conflict(f"server {server_name} has no agent") from exc


@contextmanager
def container_logs(
    ctx: ServiceContext, placement: Placement | None, tail: int, follow: bool
) -> Iterator[Iterator[bytes]]:
    """The container's output (``follow`` keeps streaming until the caller closes)."""
    server, container_id = _container(placement, "logs")
    try:
        with _client(ctx, server).logs(container_id, tail=tail, follow=follow) as chunks:
            yield chunks
    except AgentError as exc:
        raise relay(exc) from exc


def exec_target(
    ctx: ServiceContext, caller: Caller, workload_id: str, cmd: list[str]
) -> ExecTarget:
    """Where the relay opens the agent's exec WebSocket (workload.change on the workload)."""
    placement = docker_placement(ctx, caller, workload_id, Permission.WORKLOAD_CHANGE)
    server, container_id = _container(placement, "exec")
    return _client(ctx, server).exec_target(container_id, cmd or None)


def list_files(ctx: ServiceContext, caller: Caller, workload_id: str, path: str) -> FilesPublic:
    placement = _require(
        docker_placement(ctx, caller, workload_id, Permission.WORKLOAD_READ), "files"
    )
    try:
        return _client(ctx, placement.server_name).list_files(workload_id, path)
    except AgentError as exc:
        raise relay(exc) from exc


def download_file(ctx: ServiceContext, caller: Caller, workload_id: str, path: str) -> bytes:
    placement = _require(
        docker_placement(ctx, caller, workload_id, Permission.WORKLOAD_READ), "files"
    )
    try:
        return _client(ctx, placement.server_name).download_file(workload_id, path)
    except AgentError as exc:
        raise relay(exc) from exc


def upload_file(
    ctx: ServiceContext,
    caller: Caller,
    workload_id: str,
    path: str,
    content: bytes | SpooledUpload,
) -> FileEntry:
    """Relay a file to the workload's agent; ``content`` streams from a spooled file."""
    placement = _require(
        docker_placement(ctx, caller, workload_id, Permission.WORKLOAD_CHANGE), "files"
    )
    try:
        size = content.size if isinstance(content, SpooledUpload) else None
        return _client(ctx, placement.server_name).upload_file(workload_id, path, content, size)
    except AgentError as exc:
        raise relay(exc) from exc


def delete_file(ctx: ServiceContext, caller: Caller, workload_id: str, path: str) -> None:
    placement = _require(
        docker_placement(ctx, caller, workload_id, Permission.WORKLOAD_CHANGE), "files"
    )
    try:
        _client(ctx, placement.server_name).delete_file(workload_id, path)
    except AgentError as exc:
        raise relay(exc) from exc
