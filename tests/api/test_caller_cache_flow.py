"""Resolved tokens are cached for a short TTL: what that means for revocation.

Changes made through this process (logout, a disabled account, a new role) apply to the
very next request. A change made by another process sharing the database (simulated here
by writing the row directly) applies once the TTL has passed, and not later.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories.app import authed_client, login, make_context, make_settings
from factories.clock import ManualClock
from fastapi.testclient import TestClient
from sqlalchemy import update

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext
from gpuyard.store.identity_tables import UserRow


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[ServiceContext, ManualClock]]:
    context = make_context(make_settings(tmp_path / "data", None, caller_cache_s=2))
    clock = ManualClock(datetime.now(UTC))
    context.clock = clock
    yield context, clock
    context.db.dispose()


def _member(ctx: ServiceContext, admin: TestClient, email: str) -> tuple[str, TestClient]:
    """A new user account and a client logged in as it (its token now cached)."""
    password = "a-long-password-1"
    created = admin.post(
        "/api/v1/users", json={"email": email, "password": password, "role": "user"}
    )
    assert created.status_code == 201, created.text
    with TestClient(create_app(ctx)) as anon:
        member = authed_client(ctx, login(anon, email, password))
    assert member.get("/api/v1/auth/me").status_code == 200
    return str(created.json()["id"]), member


def test_changes_made_here_apply_to_the_next_request(
    clocked: tuple[ServiceContext, ManualClock],
) -> None:
    ctx, _ = clocked
    admin = authed_client(ctx)
    user_id, member = _member(ctx, admin, "m@example.com")
    assert admin.patch(f"/api/v1/users/{user_id}", json={"is_active": False}).status_code == 200
    assert member.get("/api/v1/auth/me").status_code == 401
    # And a logout, on a fresh session of the admin's:
    with TestClient(create_app(ctx)) as anon:
        other = authed_client(ctx, login(anon))
    assert other.get("/api/v1/auth/me").status_code == 200
    assert other.post("/api/v1/auth/logout").status_code == 204
    assert other.get("/api/v1/auth/me").status_code == 401


def test_another_process_change_applies_within_the_ttl(
    clocked: tuple[ServiceContext, ManualClock],
) -> None:
    ctx, clock = clocked
    admin = authed_client(ctx)
    user_id, member = _member(ctx, admin, "p@example.com")
    # Another process disables the account: this process hears nothing of it.
    with ctx.db.write() as session:
        session.execute(update(UserRow).where(UserRow.id == user_id).values(is_active=False))
    clock.advance(1)
    assert member.get("/api/v1/auth/me").status_code == 200  # within the 2 s TTL
    clock.advance(1.01)
    assert member.get("/api/v1/auth/me").status_code == 401
