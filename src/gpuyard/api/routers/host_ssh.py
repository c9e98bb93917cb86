"""Host SSH of one server: its settings, its pinned host key and a terminal on the host.

PUT/GET/DELETE /api/v1/servers/{id}/ssh, DELETE /api/v1/servers/{id}/ssh/host-key and
WS /api/v1/servers/{id}/terminal (the exec protocol of docs/agent.md, over SSH).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, WebSocket
from starlette.concurrency import run_in_threadpool

from gpuyard.api.authorization import requires, requires_socket
from gpuyard.api.deps import ContextDep
from gpuyard.api.exec_relay import relay_exec, send_error
from gpuyard.api.schemas.host_ssh import ServerSshPublic, ServerSshRequest
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import GpuyardError
from gpuyard.services.fleet import host_ssh

router = APIRouter(prefix="/servers", tags=["servers"])
Manager = Annotated[Caller, requires(Permission.SERVER_SSH_MANAGE)]
Opener = Annotated[Caller, requires(Permission.SERVER_SSH)]
SocketOpener = Annotated[Caller, requires_socket(Permission.SERVER_SSH)]


@router.put("/{server_id}/ssh", response_model=ServerSshPublic)
def set_server_ssh(
    ctx: ContextDep, caller: Manager, server_id: str, body: ServerSshRequest
) -> ServerSshPublic:
    """How gpuyard reaches the server's host over SSH. The key is stored encrypted and
    never returned; the host key is pinned at the first connection."""
    settings = host_ssh.SshSettings(
        body.host, body.port, body.username, body.private_key, body.passphrase
    )
    return ServerSshPublic.of(host_ssh.set_server_ssh(ctx, caller, server_id, settings))


@router.get("/{server_id}/ssh", response_model=ServerSshPublic)
def get_server_ssh(ctx: ContextDep, caller: Opener, server_id: str) -> ServerSshPublic:
    return ServerSshPublic.of(host_ssh.get_server_ssh(ctx, server_id))


@router.delete("/{server_id}/ssh", status_code=204)
def delete_server_ssh(ctx: ContextDep, caller: Manager, server_id: str) -> Response:
    host_ssh.delete_server_ssh(ctx, caller, server_id)
    return Response(status_code=204)


@router.delete("/{server_id}/ssh/host-key", response_model=ServerSshPublic)
def unpin_host_key(ctx: ContextDep, caller: Manager, server_id: str) -> ServerSshPublic:
    """Forget the pinned host key (the host was reinstalled or rotated its keys): the next
    connection pins whatever the host presents then."""
    return ServerSshPublic.of(host_ssh.unpin_host_key(ctx, caller, server_id))


@router.websocket("/{server_id}/terminal")
async def open_terminal(
    websocket: WebSocket,
    caller: SocketOpener,
    server_id: str,
    cmd: Annotated[list[str] | None, Query()] = None,
    tty: Annotated[
        bool, Query(description="a terminal (default); false: output as it comes")
    ] = True,
) -> None:
    """A login shell (or ``cmd``) on the server's host over SSH, bridged with the exec
    protocol (docs/agent.md): binary frames are stdin and output, text frames JSON."""
    ctx = websocket.app.state.ctx
    try:
        target = await run_in_threadpool(
            host_ssh.terminal_target, ctx, caller, server_id, cmd or [], tty
        )
    except GpuyardError as exc:
        await send_error(websocket, exc)
        return
    await relay_exec(websocket, target)
