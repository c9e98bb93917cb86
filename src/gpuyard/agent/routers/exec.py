"""WS /v1/containers/{id}/exec: an interactive shell (see gpuyard.agent.exec_session)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from gpuyard.agent.auth import websocket_authorized
from gpuyard.agent.exec_session import serve_exec
from gpuyard.agent.state import agent_state

router = APIRouter(tags=["exec"])


@router.websocket("/containers/{container_id}/exec")
async def exec_in_container(
    websocket: WebSocket,
    container_id: str,
    cmd: Annotated[list[str] | None, Query()] = None,
    tty: bool = True,
    rows: Annotated[int | None, Query(gt=0, le=1000)] = None,
    cols: Annotated[int | None, Query(gt=0, le=1000)] = None,
) -> None:
    """Run ``cmd`` (default ``/bin/sh``) with a TTY and bridge it to this WebSocket."""
    if not await websocket_authorized(websocket):
        return
    await websocket.accept()
    manager = agent_state(websocket).manager
    await serve_exec(websocket, manager, container_id, cmd or ["/bin/sh"], tty, rows, cols)
