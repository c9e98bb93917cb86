"""Credentials end when they should: a password change ends the account's sessions and
revokes its API tokens, an API token cannot mint tokens, and a revocation reaches another
process sharing the database within GPUYARD_CALLER_CACHE_S (at once in the process that
made it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from factories.app import authed_client, login, sqlite_only
from factories.clock import ManualClock
from fastapi.testclient import TestClient

from gpuyard.api.app import create_app
from gpuyard.services.bootstrap import build_context
from gpuyard.services.context import ServiceContext

PASSWORD = "first-pass-123"
NEW_PASSWORD = "second-pass-456"


def _new_user(admin: TestClient, email: str = "dev@example.com") -> str:
    created = admin.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _login_status(app_client: TestClient, email: str, password: str) -> int:
    body = {"email": email, "password": password}
    return app_client.post("/api/v1/auth/login", json=body).status_code


def test_a_password_change_ends_the_accounts_sessions(
    client: TestClient, ctx: ServiceContext
) -> None:
    user_id = _new_user(client)
    anon = TestClient(create_app(ctx))
    stolen = authed_client(ctx, login(anon, "dev@example.com", PASSWORD))
    assert stolen.get("/api/v1/auth/me").status_code == 200

    changed = client.patch(f"/api/v1/users/{user_id}", json={"password": NEW_PASSWORD})
    assert changed.status_code == 200
    refused = stolen.get("/api/v1/auth/me")
    assert refused.status_code == 401
    assert "password changed" in refused.json()["detail"]
    assert _login_status(anon, "dev@example.com", PASSWORD) == 401
    # A login right after the change (same second) works; the admin's session is untouched.
    fresh = authed_client(ctx, login(anon, "dev@example.com", NEW_PASSWORD))
    assert fresh.get("/api/v1/auth/me").status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 200


def test_a_token_minted_with_a_stolen_session_dies_with_the_password_change(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The thief's move: before the owner notices, turn the stolen session into a token
    that never expires. The password change revokes it with the sessions."""
    user_id = _new_user(client)
    anon = TestClient(create_app(ctx))
    stolen = authed_client(ctx, login(anon, "dev@example.com", PASSWORD))
    minted = stolen.post("/api/v1/tokens", json={"name": "backdoor"})
    assert minted.status_code == 201, minted.text
    backdoor = authed_client(ctx, minted.json()["token"])
    assert backdoor.get("/api/v1/auth/me").status_code == 200

    assert client.patch(f"/api/v1/users/{user_id}", json={"password": NEW_PASSWORD}).is_success
    assert backdoor.get("/api/v1/auth/me").status_code == 401
    audit = client.get("/api/v1/audit", params={"action": "user.update", "limit": 1}).json()
    assert audit["data"][0]["details"]["api_tokens_revoked"] == 1
    # A token made after the change, from a fresh session, works.
    fresh = authed_client(ctx, login(anon, "dev@example.com", NEW_PASSWORD))
    new_token = fresh.post("/api/v1/tokens", json={"name": "ci"}).json()["token"]
    assert authed_client(ctx, new_token).get("/api/v1/auth/me").status_code == 200


@sqlite_only
def test_sessions_are_told_apart_within_one_second(ctx: ServiceContext) -> None:
    """JWT times are whole seconds by default; gpuyard's iat carries microseconds."""
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, 0, 100_000, tzinfo=UTC))
    ctx.clock = clock
    admin = authed_client(ctx)
    user_id = _new_user(admin)
    anon = TestClient(create_app(ctx))
    before = authed_client(ctx, login(anon, "dev@example.com", PASSWORD))
    clock.advance(0.3)  # 12:00:00.4, the same second
    assert admin.patch(f"/api/v1/users/{user_id}", json={"password": NEW_PASSWORD}).is_success
    clock.advance(0.3)  # 12:00:00.7
    after = authed_client(ctx, login(anon, "dev@example.com", NEW_PASSWORD))
    assert before.get("/api/v1/auth/me").status_code == 401
    assert after.get("/api/v1/auth/me").status_code == 200


def test_an_api_token_cannot_mint_a_token(client: TestClient, ctx: ServiceContext) -> None:
    created = client.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 1})
    assert created.status_code == 201
    script = authed_client(ctx, created.json()["token"])
    for body in ({"name": "forever"}, {"name": "short", "expires_in_days": 1}):
        refused = script.post("/api/v1/tokens", json=body)
        assert refused.status_code == 403
        assert "API token cannot create API tokens" in refused.json()["detail"]
    assert [t["name"] for t in client.get("/api/v1/tokens").json()["data"]] == ["ci"]
    # So revoking the token ends every credential it could have led to.
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204
    assert script.get("/api/v1/auth/me").status_code == 401


@dataclass(frozen=True)
class Revocation:
    """A credential held by a script, and a change made by its owner or an admin that
    ends it."""

    name: str
    #: (admin client, context) -> the credential's bearer token.
    credential: Callable[[TestClient, ServiceContext], str]
    #: (admin client, the credential's client) -> makes the change, through the API.
    revoke: Callable[[TestClient, TestClient], None]


def _api_token(admin: TestClient, _ctx: ServiceContext) -> str:
    return str(admin.post("/api/v1/tokens", json={"name": "ci"}).json()["token"])


def _revoke_token(admin: TestClient, _held: TestClient) -> None:
    token_id = admin.get("/api/v1/tokens").json()["data"][0]["id"]
    assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 204


def _user_session(admin: TestClient, ctx: ServiceContext) -> str:
    _new_user(admin)
    return login(TestClient(create_app(ctx)), "dev@example.com", PASSWORD)


def _logout(_admin: TestClient, held: TestClient) -> None:
    assert held.post("/api/v1/auth/logout").status_code == 204


def _change_password(admin: TestClient, _held: TestClient) -> None:
    user_id = admin.get("/api/v1/users", params={"role": "user"}).json()["data"][0]["id"]
    changed = admin.patch(f"/api/v1/users/{user_id}", json={"password": NEW_PASSWORD})
    assert changed.status_code == 200


REVOCATIONS = [
    Revocation("revoked-api-token", _api_token, _revoke_token),
    Revocation("logged-out-session", _user_session, _logout),
    Revocation("changed-password", _user_session, _change_password),
]


@pytest.fixture
def two_processes(ctx: ServiceContext) -> Iterator[tuple[ServiceContext, ServiceContext]]:
    """``ctx`` and a second process's context over the same database, one clock."""
    other = build_context(ctx.settings)
    clock = ManualClock(datetime.now(UTC))
    ctx.clock = other.clock = clock
    yield ctx, other
    other.db.dispose()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in REVOCATIONS])
def test_a_revocation_reaches_the_other_process_within_the_cache_window(
    two_processes: tuple[ServiceContext, ServiceContext], case: Revocation
) -> None:
    here, there = two_processes
    clock: ManualClock = here.clock  # type: ignore[assignment]
    window = here.settings.caller_cache_s
    assert window == there.settings.caller_cache_s == 2.0  # the documented default
    admin = authed_client(here)
    token = case.credential(admin, here)
    held_here = authed_client(here, token)
    held_there = authed_client(there, token)
    # Both processes have resolved (and cached) the credential.
    assert held_here.get("/api/v1/auth/me").status_code == 200
    assert held_there.get("/api/v1/auth/me").status_code == 200

    clock.advance(0.5)  # the change comes after the credential was issued and cached
    case.revoke(admin, held_here)
    assert held_here.get("/api/v1/auth/me").status_code == 401  # here: at once
    assert held_there.get("/api/v1/auth/me").status_code == 200  # there: cached...
    clock.advance(window - 0.5)
    assert held_there.get("/api/v1/auth/me").status_code == 401  # ...for at most the window
    clock.advance(60)
    assert held_there.get("/api/v1/auth/me").status_code == 401
