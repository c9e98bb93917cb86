"""Logs, an interactive shell and files of a workload (relayed from its server's agent)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, WebSocket, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.api.authorization import requires, requires_socket
from gpuyard.api.body_limits import allow_body_bytes
from gpuyard.api.deps import ContextDep
from gpuyard.api.exec_relay import relay_exec, send_error
from gpuyard.api.schemas.workload_io import FileEntry, FilesPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import GpuyardError
from gpuyard.services.workloads import container_io as workload_io
from gpuyard.services.workloads.logs import workload_log_lines
from gpuyard.services.workloads.uploads import SpooledUpload

router = APIRouter(prefix="/workloads", tags=["workloads"])
Reader = Annotated[Caller, requires(Permission.WORKLOAD_READ)]
Changer = Annotated[Caller, requires(Permission.WORKLOAD_CHANGE)]
SocketChanger = Annotated[Caller, requires_socket(Permission.WORKLOAD_CHANGE)]
FilePath = Annotated[str, Query(max_length=4096)]


@router.get("/{workload_id}/logs", response_class=PlainTextResponse)
def get_logs(
    ctx: ContextDep,
    caller: Reader,
    workload_id: str,
    tail: Annotated[int, Query(ge=1, le=10000)] = 200,
    follow: bool = False,
) -> Response:
    """A docker workload's container output (``follow`` streams it); a simulated one's
    lifecycle."""
    placement = workload_io.container_placement(ctx, caller, workload_id, Permission.WORKLOAD_READ)
    if placement is None or placement.handle is None:
        lines = workload_log_lines(ctx, caller, workload_id, tail)
        return PlainTextResponse("\n".join(lines) + ("\n" if lines else ""))
    stack = ExitStack()  # opened now, so an agent's refusal is this response's status
    chunks = stack.enter_context(workload_io.container_logs(ctx, placement, tail, follow))

    def body() -> Iterator[bytes]:
        with stack:
            yield from chunks

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.websocket("/{workload_id}/exec")
async def exec_shell(
    websocket: WebSocket,
    caller: SocketChanger,
    workload_id: str,
    cmd: Annotated[list[str] | None, Query()] = None,
    tty: Annotated[
        bool, Query(description="a terminal (default); false: stdout and stderr as they come")
    ] = True,
) -> None:
    """An interactive shell (or ``cmd``) in replica 0, bridged to the agent's exec socket
    with the same protocol (docs/agent.md, Exec protocol)."""
    ctx = websocket.app.state.ctx
    try:
        target = await run_in_threadpool(
            workload_io.exec_target, ctx, caller, workload_id, cmd or [], tty
        )
    except GpuyardError as exc:
        await send_error(websocket, exc)
        return
    await relay_exec(websocket, target)


@router.get("/{workload_id}/files", response_model=FilesPublic)
def list_files(
    ctx: ContextDep, caller: Reader, workload_id: str, path: FilePath = ""
) -> FilesPublic:
    return FilesPublic.of(workload_io.list_files(ctx, caller, workload_id, path))


@router.get("/{workload_id}/files/{path:path}")
def download_file(ctx: ContextDep, caller: Reader, workload_id: str, path: str) -> Response:
    content = workload_io.download_file(ctx, caller, workload_id, path)
    return Response(content, media_type="application/octet-stream")


_UPLOAD_IN_MEMORY_BYTES = 4 * 1024 * 1024
_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/{workload_id}/files/{path:path}",
    response_model=FileEntry,
    status_code=201,
    openapi_extra=_RAW_BODY,
)
async def upload_file(
    ctx: ContextDep, caller: Changer, workload_id: str, path: str, request: Request
) -> FileEntry:
    """Raw body; the agent checks the path, the size and the workspace quota."""
    # The body-limit middleware enforces this allowance while the body streams in; past
    # a few MiB the body goes to a temporary file, so concurrent uploads cost disk, not
    # memory.
    allow_body_bytes(request, ctx.settings.max_upload_mib * 1024 * 1024, "GPUYARD_MAX_UPLOAD_MIB")
    with tempfile.SpooledTemporaryFile(max_size=_UPLOAD_IN_MEMORY_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
            await asyncio.sleep(0)
        entry = await run_in_threadpool(
            workload_io.upload_file, ctx, caller, workload_id, path, SpooledUpload(spool)
        )
        return FileEntry.of(entry)


@router.delete("/{workload_id}/files/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(ctx: ContextDep, caller: Changer, workload_id: str, path: str) -> Response:
    workload_io.delete_file(ctx, caller, workload_id, path)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
