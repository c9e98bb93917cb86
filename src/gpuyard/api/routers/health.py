"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gpuyard import __version__
from gpuyard.api.authorization import public
from gpuyard.api.deps import ContextDep
from gpuyard.auth.permissions import Permission

router = APIRouter(tags=["health"], dependencies=[public(Permission.HEALTH)])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "the database does not answer",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"status": {"type": "string"}, "detail": {"type": "string"}},
                }
            }
        },
    }
}


@router.get("/readyz", response_model=None, responses=_NOT_READY)
def readyz(ctx: ContextDep) -> JSONResponse | dict[str, str]:
    """The database answers. ``bus`` says how this process hears the others' commits
    (services/bus): "redis: connected", "postgres: down since ...", "none: off"... A bus
    that is down does not make the process unready: it polls meanwhile."""
    try:
        with ctx.db.read() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any DB failure means "not ready", reported, not raised
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    bus = ctx.bus.health()
    return {"status": "ready", "bus": f"{bus.transport}: {bus.describe()}"}
