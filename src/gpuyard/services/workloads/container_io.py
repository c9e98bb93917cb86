"""Logs, exec and files of workloads whose runtime runs containers (docker), through the
control plane only.

Each call resolves the workload and checks the caller's permission in a short read
transaction, then asks the runtime of the server it runs on outside any transaction.
The runtime's refusals (a path outside the workspace, a symbolic link, an upload too large,
a container gone) are relayed with their status and message. What it returns are plain
values (``gpuyard.domain.replica_access``), so the api needs neither runtimes nor agent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import Conflict, FieldError, NotFound, UpstreamProblem
from gpuyard.domain.replica_access import ExecTarget, WorkspaceFile, WorkspaceListing
from gpuyard.runtimes.base import Runtime, RuntimeFailure
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.submission import load_workload
from gpuyard.services.workloads.uploads import SpooledUpload
from gpuyard.store.fleet import cluster_kind, server_row

__all__ = [
    "ContainerLocation",
    "ExecTarget",
    "WorkspaceFile",
    "WorkspaceListing",
    "container_logs",
    "container_placement",
    "delete_file",
    "download_file",
    "exec_target",
    "list_files",
    "upload_file",
]


@dataclass(frozen=True)
class ContainerLocation:
    """Where one replica of a workload with containers runs."""

    workload_id: str
    server_name: str
    #: The cluster kind of the server: whose runtime to ask.
    kind: str
    handle: str | None


def container_placement(
    ctx: ServiceContext, caller: Caller, workload_id: str, permission: Permission, replica: int = 0
) -> ContainerLocation | None:
    """Where ``replica`` runs in a container, or None for a workload that runs elsewhere
    (simulated) or nowhere now. Checks the caller may exercise ``permission`` on it."""
    with ctx.db.read() as session:
        row = load_workload(session, caller, workload_id, permission)
        allocation = next((a for a in row.allocations if a.replica == replica), None)
        if allocation is None:
            return None
        server = server_row(session, allocation.server_id)
        kind = cluster_kind(session, server.cluster_id) if server else None
        if server is None or kind is None:
            return None
        if kind not in ctx.runtimes.kinds_where(runs_containers):
            return None
        return ContainerLocation(row.id, server.name, kind, allocation.container_id)


def _require(placement: ContainerLocation | None, what: str) -> ContainerLocation:
    if placement is None:
        raise Conflict(f"{what} needs a workload running on a docker server")
    return placement


def _container(placement: ContainerLocation | None, what: str) -> tuple[ContainerLocation, str]:
    found = _require(placement, what)
    if found.handle is None:
        raise Conflict(f"the container is not created yet; {what} once it is running")
    return found, found.handle


def relay(exc: RuntimeFailure) -> UpstreamProblem:
    """The runtime's problem as the caller's (never the agent's token or URL)."""
    errors = [FieldError(e.get("field", "path"), e.get("message", "")) for e in exc.errors]
    return UpstreamProblem(exc.status, exc.detail, errors)


def _runtime(ctx: ServiceContext, placement: ContainerLocation) -> Runtime:
    return ctx.runtimes.for_kind(placement.kind)


def _no_agent(placement: ContainerLocation) -> Conflict:
    return Conflict(f"server {placement.server_name} has no agent")


def _files_placement(
    ctx: ServiceContext, caller: Caller, workload_id: str, permission: Permission
) -> ContainerLocation:
    return _require(container_placement(ctx, caller, workload_id, permission), "files")


@contextmanager
def _runtime_errors(placement: ContainerLocation) -> Iterator[None]:
    """The runtime's failures as the caller's problems; a server it does not know is
    "no agent"."""
    try:
        yield
    except NotFound as exc:
        raise _no_agent(placement) from exc
    except RuntimeFailure as exc:
        raise relay(exc) from exc


@contextmanager
def container_logs(
    ctx: ServiceContext, placement: ContainerLocation | None, tail: int, follow: bool
) -> Iterator[Iterator[bytes]]:
    """The container's output (``follow`` keeps streaming until the caller closes)."""
    found, handle = _container(placement, "logs")
    runtime = _runtime(ctx, found)
    try:
        with ExitStack() as stack:
            # Only opening the stream means "no agent"; a NotFound while the caller
            # consumes it is the caller's own and passes through.
            try:
                chunks = stack.enter_context(runtime.logs(handle, tail=tail, follow=follow))
            except NotFound as exc:
                raise _no_agent(found) from exc
            yield chunks
    except RuntimeFailure as exc:
        raise relay(exc) from exc


def exec_target(
    ctx: ServiceContext, caller: Caller, workload_id: str, cmd: list[str], tty: bool = True
) -> ExecTarget:
    """Where the relay opens the agent's exec WebSocket (workload.change on the workload)."""
    placement = container_placement(ctx, caller, workload_id, Permission.WORKLOAD_CHANGE)
    found, handle = _container(placement, "exec")
    with _runtime_errors(found):
        return _runtime(ctx, found).exec_target(handle, cmd or None, tty)


def list_files(
    ctx: ServiceContext, caller: Caller, workload_id: str, path: str
) -> WorkspaceListing:
    """One directory of the replica's workspace (workload.read on the workload)."""
    placement = _files_placement(ctx, caller, workload_id, Permission.WORKLOAD_READ)
    with _runtime_errors(placement):
        return _runtime(ctx, placement).list_files(placement.server_name, workload_id, path)


def download_file(ctx: ServiceContext, caller: Caller, workload_id: str, path: str) -> bytes:
    """One file of the replica's workspace (workload.read on the workload)."""
    placement = _files_placement(ctx, caller, workload_id, Permission.WORKLOAD_READ)
    with _runtime_errors(placement):
        return _runtime(ctx, placement).download_file(placement.server_name, workload_id, path)


def upload_file(
    ctx: ServiceContext,
    caller: Caller,
    workload_id: str,
    path: str,
    content: bytes | SpooledUpload,
) -> WorkspaceFile:
    """Relay a file to the workload's runtime; ``content`` streams from a spooled file."""
    placement = _files_placement(ctx, caller, workload_id, Permission.WORKLOAD_CHANGE)
    with _runtime_errors(placement):
        size = content.size if isinstance(content, SpooledUpload) else None
        runtime = _runtime(ctx, placement)
        return runtime.upload_file(placement.server_name, workload_id, path, content, size)


def delete_file(ctx: ServiceContext, caller: Caller, workload_id: str, path: str) -> None:
    """Delete one file of the replica's workspace (workload.change on the workload)."""
    placement = _files_placement(ctx, caller, workload_id, Permission.WORKLOAD_CHANGE)
    with _runtime_errors(placement):
        _runtime(ctx, placement).delete_file(placement.server_name, workload_id, path)
