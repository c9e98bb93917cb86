"""The images on one server: list, pull, build and push, through its agent.

Pull, build and push answer a stream of NDJSON lines (``ImageProgressPublic``) whose last
line is ``done`` or ``error``. A refusal before the operation begins (a bad reference, a
server without images, an agent that says no) is the response's status instead.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.api.authorization import requires
from gpuyard.api.body_limits import allow_body_bytes
from gpuyard.api.deps import ContextDep
from gpuyard.api.image_converters import host_image_public, progress_line
from gpuyard.api.schemas.images import (
    HostImagesPublic,
    ImageProgressPublic,
    PullRequest,
    PushRequest,
    Reference,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.image_records import ImageProgress
from gpuyard.services.images import host_images
from gpuyard.services.workloads.uploads import SpooledUpload

router = APIRouter(prefix="/servers", tags=["server-images"])
Reader = Annotated[Caller, requires(Permission.IMAGE_READ)]
Manager = Annotated[Caller, requires(Permission.IMAGE_MANAGE)]

NDJSON = "application/x-ndjson"


class NdjsonResponse(StreamingResponse):
    media_type = NDJSON


_PROGRESS_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "progress lines (NDJSON), the last one `done` or `error`",
        "content": {NDJSON: {"schema": ImageProgressPublic.model_json_schema()}},
    }
}
_UPLOAD_IN_MEMORY_BYTES = 4 * 1024 * 1024
#: Threads reading agents' image streams, apart from the pool of ordinary sync routes: a
#: stream past this many waits for a thread, and logins and reads keep theirs.
IMAGE_STREAM_THREADS = anyio.CapacityLimiter(32)
_TAR_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _streamed(opening: AbstractContextManager[Iterator[ImageProgress]]) -> NdjsonResponse:
    stack = ExitStack()  # opened now, so a refusal before the start is this response's status
    progress = stack.enter_context(opening)
    return NdjsonResponse(_relay(progress, stack))


async def _relay(progress: Iterator[ImageProgress], stack: ExitStack) -> AsyncIterator[bytes]:
    # Each blocking read of the agent's stream runs in a thread of IMAGE_STREAM_THREADS.
    # A cancelled read is not abandoned: the slot comes back when the thread does (the
    # next line, or the agent client's idle timeout), and only then is the stream closed.
    try:
        while True:
            line = await anyio.to_thread.run_sync(
                next, progress, None, limiter=IMAGE_STREAM_THREADS
            )
            if line is None:
                return
            yield progress_line(line)
    finally:
        # Also on a client's disconnect: closing the agent's response tells it to stop.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stack.close, limiter=IMAGE_STREAM_THREADS)


@router.get("/{server_id}/images", response_model=HostImagesPublic)
def list_server_images(ctx: ContextDep, _caller: Reader, server_id: str) -> HostImagesPublic:
    """The images present on a docker server (409 for a simulated one)."""
    images = host_images.list_host_images(ctx, server_id)
    return HostImagesPublic(data=[host_image_public(i) for i in images], count=len(images))


@router.delete("/{server_id}/images", status_code=status.HTTP_204_NO_CONTENT)
def remove_server_image(
    ctx: ContextDep,
    caller: Manager,
    server_id: str,
    reference: Annotated[Reference, Query(description="the image (tag) to remove")],
    force: bool = False,
) -> Response:
    """Remove an image from the server (its tag; the image with its last tag). 409 while a
    container uses it; ``force`` removes it from under stopped ones."""
    host_images.remove_host_image(ctx, caller, server_id, reference, force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{server_id}/images/pull", response_class=NdjsonResponse, responses=_PROGRESS_STREAM)
def pull_image(
    ctx: ContextDep, caller: Manager, server_id: str, body: PullRequest
) -> NdjsonResponse:
    """Pull an image onto the server, streaming its progress."""
    return _streamed(
        host_images.pull_image(ctx, caller, server_id, body.reference, body.registry_id)
    )


@router.post(
    "/{server_id}/images/build",
    response_class=NdjsonResponse,
    responses=_PROGRESS_STREAM,
    openapi_extra=_TAR_BODY,
)
async def build_image(
    ctx: ContextDep,
    caller: Manager,
    server_id: str,
    request: Request,
    tag: Annotated[Reference, Query(description="the name to give the built image")],
    dockerfile: Annotated[
        str, Query(min_length=1, max_length=255, pattern=host_images.DOCKERFILE_PATTERN)
    ] = "Dockerfile",
) -> NdjsonResponse:
    """Build an image from a tar of the build context (the raw body, holding the
    Dockerfile), streaming the build's output."""
    host_images.check_build(tag, dockerfile)  # before the body: a bad tag costs no upload
    limit = ctx.settings.max_build_context_mib * 1024 * 1024
    allow_body_bytes(request, limit, "GPUYARD_MAX_BUILD_CONTEXT_MIB")
    # Past a few MiB the context goes to a temporary file: concurrent builds cost disk.
    # The agent has the whole context once the build is open, so the file can go then.
    with tempfile.SpooledTemporaryFile(max_size=_UPLOAD_IN_MEMORY_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
            await asyncio.sleep(0)
        upload = SpooledUpload(spool)

        def open_build() -> NdjsonResponse:
            return _streamed(
                host_images.build_image(
                    ctx, caller, server_id, tag, dockerfile, upload, upload.size
                )
            )

        return await run_in_threadpool(open_build)


@router.post("/{server_id}/images/push", response_class=NdjsonResponse, responses=_PROGRESS_STREAM)
def push_image(
    ctx: ContextDep, caller: Manager, server_id: str, body: PushRequest
) -> NdjsonResponse:
    """Push one of the server's images to a configured registry, streaming the progress."""
    return _streamed(
        host_images.push_image(ctx, caller, server_id, body.source, body.registry_id, body.target)
    )
