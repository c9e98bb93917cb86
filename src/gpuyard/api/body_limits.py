"""Bounds on request bodies: a size limit and an idle timeout, for every route.

A pure ASGI middleware wraps ``receive``, so the limit holds however a route reads its
body (FastAPI's JSON parsing, a raw stream) and memory never holds more than the limit:
- a declared ``Content-Length`` above the limit is refused before any byte is read;
- a body that keeps coming past the limit (chunked, or lying about its length) is cut
  off at the limit;
- a body that stops arriving for ``idle_timeout_s``, or is not all there within
  ``total_timeout_s`` of its first read (a drip just inside the idle timeout), is
  abandoned (408).
Both answers are domain errors raised from ``receive``, so the one problem+json handler
renders them (413 / 408 naming the limit). A route with a larger allowance of its own
(file uploads) raises the limit for its request, and lifts the whole-body deadline, with
:func:`allow_body_bytes` before it reads. Once the body is complete, ``receive`` passes
through untouched: streaming responses wait on it for the client's disconnect, which has
no time limit.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpuyard.domain.errors import PayloadTooLarge, RequestTimeout

_LIMIT_KEY = "gpuyard.max_body_bytes"
_SETTING = "GPUYARD_MAX_BODY_KIB"


def allow_body_bytes(request: Request, limit: int, setting: str) -> None:
    """Let this request's body be up to ``limit`` bytes, a limit the ``setting`` changes,
    with no deadline for the whole body (a large file over a slow link takes its time;
    the idle timeout still holds). Call before reading the body."""
    request.scope[_LIMIT_KEY] = (limit, setting, None)


class BodyLimits:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, idle_timeout_s: float, total_timeout_s: float
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        complete = False
        deadline: float | None = None  # set at the first read: the whole body's deadline

        async def bounded_receive() -> Message:
            nonlocal received, complete, deadline
            if complete:
                return await receive()
            limit, setting, total = scope.get(
                _LIMIT_KEY, (self.max_body_bytes, _SETTING, self.total_timeout_s)
            )
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + total if total is not None else float("inf")
                declared = _content_length(scope)
                if declared is not None and declared > limit:
                    raise _too_large(limit, setting)
            # Whichever comes first: the next chunk's idle timeout or the body's deadline
            # (a body dripping one byte just inside the idle timeout still ends).
            wait = min(self.idle_timeout_s, deadline - loop.time())
            try:
                async with asyncio.timeout(max(wait, 0)):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive in time (no data for "
                    f"{self.idle_timeout_s:g} s, or not all of it within {total:g} s)"
                    if total is not None
                    else f"the request body stopped arriving for {self.idle_timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit, setting)
                complete = not message.get("more_body", False)
            else:  # http.disconnect
                complete = True
            return message

        await self.app(scope, bounded_receive, send)


def _too_large(limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"this request's body is limited to {_size(limit)} ({setting})")


def _size(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
