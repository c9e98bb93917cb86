"""One renderer for every error: RFC 9457 problem+json with the fields at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpuyard.domain.errors import FieldError, GpuyardError, InvalidInput, RateLimited

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body["errors"] = [{"field": e.field, "message": e.message} for e in errors or []]
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _field_of(loc: tuple[Any, ...]) -> str:
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GpuyardError)
    async def _domain_error(_request: Request, exc: GpuyardError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if exc.status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return problem(exc.status, exc.title, exc.detail, exc.type, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(_field_of(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem(422, InvalidInput.title, detail, InvalidInput.type, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)
