"""Bearer-token authentication for every agent route except /healthz (constant-time compare)."""

from __future__ import annotations

import hmac

from fastapi import Request, WebSocket

from gpuyard.agent.problems import error_response
from gpuyard.agent.state import agent_state
from gpuyard.domain.errors import Unauthenticated

_MESSAGE = "missing or wrong agent token (Authorization: Bearer <token>)"


def token_accepted(expected: str, authorization: str | None) -> bool:
    """Whether an Authorization header carries ``expected`` as a bearer token."""
    scheme, _, value = (authorization or "").partition(" ")
    # compare_digest looks at every byte whatever matches: no early exit on a shared prefix.
    same = hmac.compare_digest(value.strip().encode(), expected.encode())
    return scheme.lower() == "bearer" and same


def require_token(request: Request) -> None:
    """Router dependency: a 401 problem unless the request carries the agent's token."""
    if not token_accepted(agent_state(request).token, request.headers.get("authorization")):
        raise Unauthenticated(_MESSAGE)


async def websocket_authorized(websocket: WebSocket) -> bool:
    """Check a WebSocket handshake. When the token is missing or wrong, refuse it with an
    HTTP 401 problem where the server supports that (uvicorn does), else close with 1008
    before accepting, and return False."""
    if token_accepted(agent_state(websocket).token, websocket.headers.get("authorization")):
        return True
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(Unauthenticated(_MESSAGE)))
    else:
        await websocket.close(code=1008, reason="unauthenticated")
    return False
