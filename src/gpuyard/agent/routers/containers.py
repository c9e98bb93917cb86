"""Container lifecycle and logs: /v1/containers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.agent.models import (
    ContainerInfo,
    ContainerSpec,
    ContainersPublic,
    ContainerStats,
    LabelsRequest,
    StopRequest,
)
from gpuyard.agent.state import AgentDep

router = APIRouter(prefix="/containers", tags=["containers"])
#: Threads for followed log streams, apart from the pool that serves ordinary requests, so
#: many idle followers cannot starve the rest of the API.
LOG_STREAMS = anyio.CapacityLimiter(256)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_container(spec: ContainerSpec, agent: AgentDep, response: Response) -> ContainerInfo:
    """Create and start a replica (201); if it already exists, return it as it is (200)."""
    info, created = agent.manager.create(spec)
    if not created:
        response.status_code = status.HTTP_200_OK
    return info


@router.get("")
def list_containers(
    agent: AgentDep, workload_id: Annotated[str | None, Query()] = None
) -> ContainersPublic:
    """This agent's gpuyard containers in every state, with exit codes."""
    data = agent.manager.list(workload_id)
    return ContainersPublic(data=data, count=len(data))


@router.get("/{container_id}")
def get_container(container_id: str, agent: AgentDep) -> ContainerInfo:
    return agent.manager.get(container_id)


@router.get("/{container_id}/stats")
def container_stats(container_id: str, agent: AgentDep) -> ContainerStats:
    """Its cumulative CPU time now (the control plane's idle culling)."""
    return agent.manager.stats(container_id)


@router.post("/{container_id}/stop")
def stop_container(container_id: str, body: StopRequest, agent: AgentDep) -> ContainerInfo:
    """SIGTERM, then SIGKILL after ``grace_s``; returns the stopped container."""
    return agent.manager.stop(container_id, body.grace_s)


@router.put("/{container_id}/labels")
def set_container_labels(container_id: str, body: LabelsRequest, agent: AgentDep) -> ContainerInfo:
    """Set labels over the container's own (Docker's are fixed at create): the agent
    keeps them on its disk and reports them merged (warm pool containers changing hands)."""
    return agent.manager.set_labels(container_id, body.labels)


@router.delete("/{container_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_container(container_id: str, agent: AgentDep) -> None:
    """Remove a container (killed first if it runs); its workspace stays."""
    agent.manager.remove(container_id)


@router.get("/{container_id}/logs", response_class=StreamingResponse)
async def container_logs(
    container_id: str,
    agent: AgentDep,
    tail: Annotated[int | None, Query(ge=0, description="last N lines; all if absent")] = None,
    follow: bool = False,
    timestamps: bool = False,
) -> StreamingResponse:
    """stdout and stderr as text; with ``follow`` the stream stays open for new lines."""
    stream = await run_in_threadpool(
        agent.manager.logs, container_id, tail=tail, follow=follow, timestamps=timestamps
    )
    return StreamingResponse(_relay(stream), media_type="text/plain; charset=utf-8")


async def _relay(stream: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Each blocking read runs in a thread that a cancelled request abandons; closing the
    # stream then shuts its socket, which ends that thread's read.
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(
                next, stream, None, abandon_on_cancel=True, limiter=LOG_STREAMS
            )
            if chunk is None:
                return
            yield chunk
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
