"""Bridging a user's exec WebSocket to the agent's (or to the session a runtime opens in
the agent's protocol: a kubernetes pod's exec), frame for frame.

Binary frames are stdin one way and output the other; text frames are the protocol's JSON
control messages (docs/agent.md, Exec protocol) and pass through unchanged. When either
side closes, the other is closed too, so the agent hangs up the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from contextlib import AbstractAsyncContextManager

from fastapi import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from gpuyard.domain.errors import GpuyardError
from gpuyard.domain.replica_access import ExecStream, ExecTarget
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
    async with contextlib.AsyncExitStack() as stack:
        try:
            agent = await stack.enter_async_context(_open(target))
        except GpuyardError as exc:
            await send_error(websocket, exc)
            return
        except (OSError, InvalidHandshake) as exc:
            await websocket.accept()
            detail = f"the agent refused the exec session: {exc}"
            error = {"type": "error", "status": 502, "detail": detail}
            await websocket.send_text(json.dumps(error))
            await websocket.close(code=1011)
            return
        await websocket.accept()
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


def _open(target: ExecTarget) -> AbstractAsyncContextManager[ExecStream]:
    if target.opener is not None:
        return target.opener()
    return connect(target.url, additional_headers=target.headers, max_size=None)


async def _user_to_agent(websocket: WebSocket, agent: ExecStream) -> None:
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


async def _agent_to_user(agent: ExecStream, websocket: WebSocket) -> None:
    try:
        async for frame in agent:
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)
    except (WebSocketDisconnect, ConnectionClosed, RuntimeError):
        return
