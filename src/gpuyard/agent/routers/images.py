"""Images on this host: /v1/images (list), /pull, /build (a tar body), /push.

Pull, build and push answer NDJSON progress lines (``ProgressLine``), the last one
``done`` or ``error``; a refusal before the operation starts is the response's status.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from gpuyard.agent.errors import PayloadTooLarge
from gpuyard.agent.image_models import ImagesPublic, PullSpec, PushSpec
from gpuyard.agent.images import ImageStream
from gpuyard.agent.state import AgentDep
from gpuyard.domain.errors import InvalidInput

router = APIRouter(prefix="/images", tags=["images"])
NDJSON = "application/x-ndjson"
_IN_MEMORY_BYTES = 4 * 1024 * 1024
#: Image streams open at once, each with one thread reading Docker's stream, apart from
#: the pool of ordinary requests; a stream past this many waits for a slot.
IMAGE_STREAMS = anyio.CapacityLimiter(32)


def _ndjson(lines: ImageStream, background: BackgroundTask | None = None) -> StreamingResponse:
    return StreamingResponse(_relay(lines), media_type=NDJSON, background=background)


async def _relay(lines: ImageStream) -> AsyncIterator[bytes]:
    # Each stream holds one slot of IMAGE_STREAMS until the thread reading it has really
    # ended, so long builds and pulls cannot take every thread the rest of the agent's API
    # needs, and abandoned reads cannot pile up. A cancelled request abandons the read in
    # flight, then closes the stream: its watchdog shuts Docker's socket, so that read ends
    # at once, and the close waits for it (the stream's own one-thread limiter) and then
    # closes Docker's stream.
    reader = anyio.CapacityLimiter(1)
    holding = False
    try:
        await IMAGE_STREAMS.acquire_on_behalf_of(lines)
        holding = True
        while True:
            line = await anyio.to_thread.run_sync(
                next, lines, None, abandon_on_cancel=True, limiter=reader
            )
            if line is None:
                return
            yield line.model_dump_json().encode() + b"\n"
    finally:
        lines.abort()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lines.close, limiter=reader)
        if holding:
            IMAGE_STREAMS.release_on_behalf_of(lines)


@router.get("")
def list_images(agent: AgentDep) -> ImagesPublic:
    """The images of this host's Docker."""
    data = agent.images.list()
    return ImagesPublic(data=data, count=len(data))


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def remove_image(
    agent: AgentDep,
    reference: Annotated[str, Query(min_length=1, max_length=512)],
    force: bool = False,
) -> None:
    """Untag an image (removing it with its last tag); 409 while a container uses it."""
    agent.images.remove(reference, force=force)


@router.post("/pull", response_class=StreamingResponse)
def pull_image(spec: PullSpec, agent: AgentDep) -> StreamingResponse:
    return _ndjson(agent.images.pull(spec.reference, spec.auth))


@router.post("/push", response_class=StreamingResponse)
def push_image(spec: PushSpec, agent: AgentDep) -> StreamingResponse:
    return _ndjson(agent.images.push(spec.source, spec.target, spec.auth))


@router.post("/build", response_class=StreamingResponse)
async def build_image(
    request: Request,
    agent: AgentDep,
    tag: Annotated[str, Query(min_length=1, max_length=512)],
    dockerfile: Annotated[str, Query(min_length=1, max_length=255)] = "Dockerfile",
) -> StreamingResponse:
    """Build ``tag`` from the raw body, a tar of the build context."""
    limit = agent.settings.max_upload_mib * 1024 * 1024
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise PayloadTooLarge(f"the build context is over {agent.settings.max_upload_mib} MiB")
    spool = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES)  # noqa: SIM115 - closed below
    try:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(
                    f"the build context is over {agent.settings.max_upload_mib} MiB"
                )
            await run_in_threadpool(spool.write, chunk)
        if received == 0:
            raise InvalidInput.for_field("context", "empty: send a tar of the build context")
        spool.seek(0)
        lines = await run_in_threadpool(agent.images.build, spool, tag, dockerfile)
    except BaseException:
        spool.close()
        raise
    return _ndjson(lines, BackgroundTask(spool.close))
