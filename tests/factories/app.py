"""Builders for a real gpuyard app over a real database (SQLite file or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories.templates import seed_embedded_database
from gpuyard.api.app import create_app
from gpuyard.auth.caller import Caller
from gpuyard.auth.passwords import hash_password
from gpuyard.auth.roles import Role
from gpuyard.auth.tokens import issue_access_token
from gpuyard.services.bootstrap import build_context, ensure_demo_cluster, ensure_first_admin
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.cycle import CycleStats, run_scheduling_cycle
from gpuyard.settings import Settings
from gpuyard.store.identity_tables import UserRow

#: For API tests whose subject does not depend on the database (policy, cookies, logging):
#: overrides the sqlite/postgres parameters of the `database_url` fixture.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct-horse-battery"


def make_settings(data_dir: Path, database_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "run_loops": False,
        "demo": True,
        # The priority policy caps plain users at 3 by default; tests of other subjects
        # have users submit at any priority. The policy's own tests (tests/api/
        # test_priority_policy.py) pass the shipped defaults back in.
        "max_priority_user": 5,
    }
    values.update(overrides)
    return Settings(**values)


def make_context(settings: Settings) -> ServiceContext:
    """A context as `gpuyard serve` builds one, with its first admin and, unless
    ``demo=False``, the demo cluster. The embedded SQLite database starts as a copy of one
    migrated once per run (factories/templates.py); build_context's migration then has
    nothing to do."""
    seed_embedded_database(settings)
    ctx = build_context(settings)
    ensure_first_admin(ctx)
    if settings.demo:
        ensure_demo_cluster(ctx)
    return ctx


def admin_caller(ctx: ServiceContext) -> Caller:
    """The first admin (made by make_context) as a service-layer caller."""
    with ctx.db.read() as session:
        user = session.scalars(select(UserRow).where(UserRow.email == ADMIN_EMAIL)).one()
    return Caller(user.id, user.email, Role(user.role))


def login(client: TestClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def authed_client(
    ctx: ServiceContext, token: str | None = None, app: FastAPI | None = None
) -> TestClient:
    """A client of a new app over ``ctx`` (or of ``app``, one already built over it:
    building an app takes a few tenths of a second), signed in as ``token``'s holder or,
    without one, as the first admin."""
    client = TestClient(app or create_app(ctx))
    client.headers["Authorization"] = f"Bearer {token or login(client)}"
    return client


def add_user(ctx: ServiceContext, email: str, password: str, role: str = "user") -> str:
    """A user straight in the database; returns their id."""
    with ctx.db.write() as session:
        row = UserRow(email=email, password_hash=hash_password(password), role=role)
        session.add(row)
        session.flush()
        return row.id


def mint_token(ctx: ServiceContext, user_id: str, minutes: float = 60) -> str:
    """A session JWT for ``user_id`` without a login round trip (no argon2, no audit)."""
    return issue_access_token(ctx.secret_key, user_id, minutes, ctx.now()).token


def user_id_of(ctx: ServiceContext, email: str) -> str:
    with ctx.db.read() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.email == email))
    assert user_id is not None, email
    return user_id


def settle(ctx: ServiceContext, max_cycles: int = 10) -> CycleStats:
    """Run scheduling cycles until one admits nothing (the queue is stable)."""
    stats = run_scheduling_cycle(ctx)
    for _ in range(max_cycles):
        if stats.admitted == 0 and stats.conflicts == 0:
            break
        stats = run_scheduling_cycle(ctx)
    return stats
