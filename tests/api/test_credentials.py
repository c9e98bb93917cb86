"""API tokens (shown once, stored hashed, listable, revocable, expiring) and invite codes
(single use, expiring, for one email)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from factories.app import add_user, authed_client, mint_token, sqlite_only
from factories.clock import ManualClock
from fastapi.testclient import TestClient
from sqlalchemy import select

from gpuyard.api.app import create_app
from gpuyard.domain.errors import GpuyardError
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.invites import register
from gpuyard.store.identity_tables import InviteRow
from gpuyard.store.token_tables import ApiTokenRow


def _create_token(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/tokens", json={"name": "ci", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_api_token_is_shown_once_stored_hashed_and_works_as_bearer(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = _create_token(client)
    token = created["token"]
    assert token.startswith("gpy_")
    assert token.startswith(created["display_prefix"])
    listed = client.get("/api/v1/tokens").json()
    assert [t["id"] for t in listed["data"]] == [created["id"]]
    assert "token" not in listed["data"][0]
    with ctx.db.read() as session:
        row = session.get(ApiTokenRow, created["id"])
        assert row is not None
        stored = [str(v) for v in vars(row).values()]
    assert not any(token in value for value in stored)  # only its SHA-256 is kept

    script = authed_client(ctx, token)
    assert script.get("/api/v1/auth/me").json()["role"] == "admin"
    assert script.get("/api/v1/tokens").json()["data"][0]["last_used_at"] is not None
    # Logging out means ending a login session; an API token is revoked by id instead.
    assert script.post("/api/v1/auth/logout").status_code == 409


def test_revoked_api_token_is_refused(client: TestClient, ctx: ServiceContext) -> None:
    created = _create_token(client)
    script = authed_client(ctx, created["token"])
    assert script.get("/api/v1/workloads").status_code == 200
    assert client.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    refused = script.get("/api/v1/workloads")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert client.get("/api/v1/tokens").json()["count"] == 0
    assert client.delete(f"/api/v1/tokens/{created['id']}").status_code == 404


def test_only_the_owner_sees_and_revokes_a_token(client: TestClient, ctx: ServiceContext) -> None:
    created = _create_token(client)
    dev = authed_client(ctx, mint_token(ctx, add_user(ctx, "dev@example.com", "dev-pass-123")))
    assert dev.get("/api/v1/tokens").json()["count"] == 0
    assert dev.delete(f"/api/v1/tokens/{created['id']}").status_code == 404
    assert authed_client(ctx, created["token"]).get("/api/v1/auth/me").status_code == 200


@sqlite_only
def test_api_token_expires(client: TestClient, ctx: ServiceContext) -> None:
    created = _create_token(client, expires_in_days=1)
    assert created["expires_at"] is not None
    clock = ManualClock(datetime.now(UTC))
    ctx.clock = clock
    script = authed_client(ctx, created["token"])
    assert script.get("/api/v1/auth/me").status_code == 200
    clock.advance(86400 + 1)
    refused = script.get("/api/v1/auth/me")
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


@sqlite_only
def test_garbage_api_token_is_refused(ctx: ServiceContext) -> None:
    assert authed_client(ctx, "gpy_not-a-real-token").get("/api/v1/auth/me").status_code == 401


def _register(anon: TestClient, code: str, email: str = "new@example.com") -> Any:
    return anon.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "new-pass-123", "invite_code": code},
    )


def _field_errors(response: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_invite_code_works_once(client: TestClient, ctx: ServiceContext) -> None:
    invite = client.post("/api/v1/invites", json={"email": "new@example.com"}).json()
    anon = TestClient(create_app(ctx))
    assert _register(anon, invite["code"]).status_code == 201
    again = _register(anon, invite["code"])
    assert again.status_code == 422
    assert _field_errors(again) == {"invite_code": "this invite code was already used"}
    with ctx.db.read() as session:
        row = session.scalar(select(InviteRow).where(InviteRow.id == invite["id"]))
        assert row is not None
        assert invite["code"] not in row.code_hash  # stored as a digest


def test_expired_invite_is_refused(client: TestClient, ctx: ServiceContext) -> None:
    invite = client.post(
        "/api/v1/invites", json={"email": "new@example.com", "expires_in_hours": 1}
    ).json()
    clock = ManualClock(datetime.now(UTC))
    ctx.clock = clock
    clock.advance(3601)
    refused = _register(TestClient(create_app(ctx)), invite["code"])
    assert refused.status_code == 422
    assert "expired" in _field_errors(refused)["invite_code"]


@sqlite_only
def test_invite_is_for_one_email_and_codes_must_exist(
    client: TestClient, ctx: ServiceContext
) -> None:
    invite = client.post("/api/v1/invites", json={"email": "new@example.com"}).json()
    anon = TestClient(create_app(ctx))
    wrong_email = _register(anon, invite["code"], email="someone@example.com")
    assert wrong_email.status_code == 422
    assert "email" in _field_errors(wrong_email)
    unknown = _register(anon, "gpyinv_made-up")
    assert _field_errors(unknown) == {"invite_code": "unknown invite code"}
    assert _register(anon, invite["code"]).status_code == 201  # still unused


@sqlite_only
def test_invite_grants_its_role(client: TestClient, ctx: ServiceContext) -> None:
    invite = client.post(
        "/api/v1/invites", json={"email": "ops@example.com", "role": "operator"}
    ).json()
    registered = _register(TestClient(create_app(ctx)), invite["code"], email="ops@example.com")
    assert registered.json()["role"] == "operator"


def test_an_invite_code_is_single_use_under_concurrent_registrations(
    client: TestClient, ctx: ServiceContext
) -> None:
    code = client.post("/api/v1/invites", json={"email": "new@example.com"}).json()["code"]
    outcomes: list[int] = []
    start = threading.Barrier(4)

    def attempt(i: int) -> None:
        start.wait()
        try:
            register(ctx, "new@example.com", "new-pass-123", code, None, f"10.0.0.{i}")
            outcomes.append(201)
        except GpuyardError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [201, 422, 422, 422]
    users = client.get("/api/v1/users", params={"limit": 1000}).json()["data"]
    assert [u["email"] for u in users].count("new@example.com") == 1
