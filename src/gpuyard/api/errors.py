"""One renderer for every error: RFC 9457 problem+json with the fields at fault."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import Scope

from gpuyard.api.schemas.common import UNSTORABLE_TEXT
from gpuyard.domain.errors import FieldError, GpuyardError, InvalidInput, RateLimited
from gpuyard.domain.text import renderable

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    # The field path may quote a caller's dict key, which may be unstorable text itself:
    # the answer must render whatever was sent.
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": renderable(detail),
        "errors": [
            {"field": renderable(e.field), "message": renderable(e.message)} for e in errors or []
        ],
    }
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _field_of(loc: tuple[Any, ...]) -> str:
    if loc and loc[-1] == "[key]":
        # ("body", "env", "bad key", "[key]"): the dict's key itself is at fault.
        loc = loc[:-1]
    # ("body", "gpus", 0, "model") -> "gpus.0.model"; ("query", "limit") -> "limit"
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in {"body", "query", "path"}
        else [str(p) for p in loc]
    )
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "missing":
        return "field required"
    return str(error.get("msg", "invalid value"))


def _field_errors(error: dict[str, Any]) -> list[FieldError]:
    field = _field_of(tuple(error["loc"]))
    if error.get("type") == UNSTORABLE_TEXT:
        # One error per bad entry below the field (env.A, command.2, labels key 3).
        paths = (error.get("ctx") or {}).get("paths") or [("", _message(error))]
        return [FieldError(f"{field}.{sub}" if sub else field, why) for sub, why in paths]
    return [FieldError(field, _message(error))]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GpuyardError)
    async def _domain_error(_request: Request, exc: GpuyardError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if exc.status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return problem(exc.status, exc.title, exc.detail, exc.type, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [field_error for e in exc.errors() for field_error in _field_errors(e)]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem(422, InvalidInput.title, detail, InvalidInput.type, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, GpuyardError):
            # FastAPI answers 400 for any error raised while it reads a body; the body
            # limits (api/body_limits.py) raise their own 413 / 408 there.
            return await _domain_error(request, exc.__cause__)
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read the body at all: as malformed as a body that is not
            # JSON, which FastAPI itself answers with a 422.
            return await _domain_error(request, _unreadable_body(exc.__cause__))
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route that matched the path
            # only; a path served by several routes (GET and POST /workloads) allows all
            # of theirs. OPTIONS on a known path answers with them instead of a 405.
            allow = ", ".join(sorted(allowed_methods(app, request.scope) | {"OPTIONS"}))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            detail = f"{request.method} is not allowed here; allowed: {allow}"
            return problem(405, "Method not allowed", detail, headers={"Allow": allow})
        title = {404: "Not found"}.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)


def _unreadable_body(cause: BaseException) -> InvalidInput:
    if isinstance(cause, UnicodeDecodeError):
        return InvalidInput.for_field("body", "must be JSON text encoded in UTF-8")
    if isinstance(cause, RecursionError):
        return InvalidInput.for_field("body", "is nested too deeply")
    return InvalidInput.for_field("body", "could not be read as JSON")


def allowed_methods(app: FastAPI, scope: Scope) -> set[str]:
    """Every method some route of ``app`` serves at this request's path."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "_methods", None)
    if table is None:  # built on the first 405: every route is included by then
        table = [
            (compile_path(route.path)[0], set(route.methods or ()))
            for route in _route_contexts(app)
            if route.path and route.methods
        ]
        app.state._methods = table
    path = scope["path"]
    return {method for regex, methods in table if regex.match(path) for method in methods}


def _route_contexts(app: FastAPI) -> list[Any]:
    # Newer FastAPI keeps included routers as routes of their own (api/authorization.py).
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(iter_route_contexts(app.routes) if iter_route_contexts else app.routes)
