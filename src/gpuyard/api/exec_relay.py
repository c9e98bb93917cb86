"""Bridging a user's exec WebSocket to the agent's, frame for frame.

Binary frames are stdin one way and output the other; text frames are the protocol's JSON
control messages (docs/agent.md, Exec protocol) and pass through unchanged. When either
side closes, the other is closed too, so the agent hangs up the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gpuyard.domain.errors import GpuyardError
from gpuyard.domain.replica_access import ExecTarget
from gpuyard.log import get_logger

log = get_logger(__name__)


async def send_error(websocket: WebSocket, exc: GpuyardError) -> None:
    """Tell the user why there is no session, in the protocol's own error frame."""
    await websocket.accept()
    await websocket.send_text(
        json.dumps({"type": "error", "status": exc.status, "detail": exc.detail})
    )
    await websocket.close(code=1011 if exc.status >= 500 else 1008)


async def relay_exec(websocket: WebSocket, target: ExecTarget) -> None:
    """Accept the user's socket and pump frames both ways until one side closes."""
    try:
        agent = await connect(target.url, additional_headers=target.headers, max_size=None)
    except (OSError, InvalidStatus) as exc:
        await websocket.accept()
        detail = f"the agent refused the exec session: {exc}"
        await websocket.send_text(json.dumps({"type": "error", "status": 502, "detail": detail}))
        await websocket.close(code=1011)
        return
    await websocket.accept()
    async with agent:
        upstream = asyncio.create_task(_user_to_agent(websocket, agent))
        downstream = asyncio.create_task(_agent_to_user(agent, websocket))
        _done, pending = await asyncio.wait(
            {upstream, downstream}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the user already left
        await websocket.close()


async def _user_to_agent(websocket: WebSocket, agent: ClientConnection) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await agent.send(message["bytes"])
            elif message.get("text") is not None:
                await agent.send(message["text"])
    except (WebSocketDisconnect, ConnectionClosed):
        return


async def _agent_to_user(agent: ClientConnection, websocket: WebSocket) -> None:
    try:
        async for frame in agent:
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)
    except (WebSocketDisconnect, ConnectionClosed, RuntimeError):
        return
