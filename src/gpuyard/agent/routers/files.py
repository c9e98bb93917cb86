"""Workspace files: /v1/workspaces/{workload_id}/files (list, upload, download, delete).

Paths are relative to the workload's directory (mounted at the workload's files_path,
/workspace by default, in its containers); traversal, links and oversize uploads are
refused with a problem saying why.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.agent.models import WORKLOAD_ID_PATTERN, FileEntry, FilesPublic
from gpuyard.agent.state import AgentDep
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound

router = APIRouter(prefix="/workspaces/{workload_id}", tags=["files"])
WorkloadId = Annotated[str, Path(pattern=WORKLOAD_ID_PATTERN)]


@router.get("/files")
def list_files(
    workload_id: WorkloadId, agent: AgentDep, path: Annotated[str, Query()] = ""
) -> FilesPublic:
    """The entries of one directory of the workspace (the root by default)."""
    files = agent.workspaces
    data = files.list_dir(workload_id, path)
    return FilesPublic(
        path=path,
        data=data,
        count=len(data),
        used_bytes=files.used_bytes(workload_id),
        quota_bytes=files.quota_bytes(workload_id),
    )


@router.get("/files/{path:path}", response_class=StreamingResponse)
def download_file(workload_id: WorkloadId, path: str, agent: AgentDep) -> StreamingResponse:
    """A file's content (application/octet-stream)."""
    fd, size = agent.workspaces.open_file(workload_id, path)
    return StreamingResponse(
        agent.workspaces.read_chunks(fd),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )


@router.put("/files/{path:path}", status_code=status.HTTP_201_CREATED)
async def upload_file(
    workload_id: WorkloadId, path: str, request: Request, agent: AgentDep
) -> FileEntry:
    """Write the raw request body to ``path`` (parents created, an old file replaced)."""
    files = agent.workspaces
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidInput.for_field("content-length", "not a number")
        await run_in_threadpool(files.check_upload_size, workload_id, int(length))
    upload = await run_in_threadpool(files.begin_upload, workload_id, path)
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(upload.write, chunk)
        return await run_in_threadpool(upload.commit)
    finally:
        upload.abort()  # no-op after a commit


@router.delete("/files/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(workload_id: WorkloadId, path: str, agent: AgentDep) -> None:
    """Delete a file, a link (not what it points to) or an empty directory."""
    agent.workspaces.delete(workload_id, path)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def delete_workspace(workload_id: WorkloadId, agent: AgentDep) -> None:
    """Delete the whole workspace; refused (409) while a container of the workload exists."""
    if agent.manager.list(workload_id):
        raise Conflict(f"workload {workload_id!r} still has containers on this host")
    if not agent.workspaces.remove(workload_id):
        raise NotFound.for_object("workspace", workload_id)
