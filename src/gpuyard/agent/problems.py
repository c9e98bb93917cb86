"""problem+json for the agent: domain errors, validation errors and HTTP errors, one shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpuyard.domain.errors import FieldError, GpuyardError, InvalidInput

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    errors: list[FieldError] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document (with gpuyard's ``errors`` list of fields at fault)."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body["errors"] = [{"field": e.field, "message": e.message} for e in errors or []]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: GpuyardError) -> JSONResponse:
    return problem_response(exc.status, exc.title, exc.detail, exc.type, exc.errors)


def _field(loc: tuple[Any, ...]) -> str:
    parts = loc[1:] if loc and loc[0] in {"body", "query", "path"} else loc
    return ".".join(str(p) for p in parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error the agent raises as problem+json with the right status."""

    @app.exception_handler(GpuyardError)
    async def _domain(_request: Request, exc: GpuyardError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(_field(tuple(e["loc"])), str(e.get("msg"))) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(422, InvalidInput.title, detail, InvalidInput.type, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, "Error", str(exc.detail))
