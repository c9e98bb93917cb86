"""Email addresses entering through the API (register, accounts made by admins, invites,
login) are validated and normalised one way (domain/emails.py)."""

from __future__ import annotations

from typing import Any

import pytest
from factories.app import add_user, login
from fastapi.testclient import TestClient

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext

LOOKALIKES = [
    pytest.param("admin\u200b@example.com", id="zero-width-space"),
    pytest.param("\u202eadmin@example.com", id="right-to-left-override"),
    pytest.param("admin@example.com\u2069", id="pop-directional-isolate"),
    pytest.param("\u0430dmin@example.com", id="cyrillic-a"),
    pytest.param("admin\x00@example.com", id="nul"),
    pytest.param("admin@example.com\n", id="newline"),
    pytest.param("Admin <admin@example.com>", id="display-name"),
]


def _only_email_error(response: Any) -> str:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["email"], errors
    return str(errors[0]["message"])


@pytest.mark.parametrize("email", LOOKALIKES)
def test_lookalike_addresses_are_refused_everywhere_they_enter(
    client: TestClient, ctx: ServiceContext, email: str
) -> None:
    _only_email_error(
        client.post("/api/v1/users", json={"email": email, "password": "long-enough-1"})
    )
    _only_email_error(client.post("/api/v1/invites", json={"email": email}))
    anon = TestClient(create_app(ctx))
    _only_email_error(
        anon.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "long-enough-1", "invite_code": "gpyinv_x"},
        )
    )
    emails = [u["email"] for u in client.get("/api/v1/users").json()["data"]]
    assert emails == ["admin@example.com"]


def test_the_refusal_says_why(client: TestClient) -> None:
    body = {"email": "admin\u200b@example.com", "password": "long-enough-1"}
    message = _only_email_error(client.post("/api/v1/users", json=body))
    assert "ZERO WIDTH SPACE" in message


def test_addresses_are_stored_normalised_and_match_in_any_case(
    client: TestClient, ctx: ServiceContext
) -> None:
    created = client.post(
        "/api/v1/users", json={"email": " Dev@Example.COM ", "password": "long-enough-1"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "dev@example.com"
    again = client.post(
        "/api/v1/users", json={"email": "DEV@example.com", "password": "long-enough-1"}
    )
    assert again.status_code == 409
    invite = client.post("/api/v1/invites", json={"email": "dev@EXAMPLE.com"})
    assert invite.status_code == 409
    anon = TestClient(create_app(ctx))
    assert login(anon, "DeV@eXample.Com", "long-enough-1")


def test_an_invite_and_its_registration_agree_on_the_address(
    client: TestClient, ctx: ServiceContext
) -> None:
    code = client.post("/api/v1/invites", json={"email": "New@Bücher.de"}).json()["code"]
    registered = TestClient(create_app(ctx)).post(
        "/api/v1/auth/register",
        json={"email": "new@BÜCHER.de", "password": "long-enough-1", "invite_code": code},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == "new@xn--bcher-kva.de"
    assert login(TestClient(create_app(ctx)), "new@bücher.de", "long-enough-1")


def test_accounts_stored_by_earlier_versions_still_log_in(
    client: TestClient, ctx: ServiceContext
) -> None:
    # Stored as earlier versions did: as typed, lower-cased or not, Unicode domain kept.
    add_user(ctx, "Legacy@Example.com", "legacy-pass-1")
    add_user(ctx, "old@bücher.de", "old-pass-123")
    add_user(ctx, "odd@@host", "odd-pass-123")  # no valid address at all
    anon = TestClient(create_app(ctx))
    assert login(anon, "legacy@example.com", "legacy-pass-1")
    assert login(anon, "old@xn--bcher-kva.de", "old-pass-123")
    assert login(anon, "Odd@@Host", "odd-pass-123")
    # And they keep their address: no second account for it under another form.
    taken = client.post(
        "/api/v1/users", json={"email": "old@xn--bcher-kva.de", "password": "long-enough-1"}
    )
    assert taken.status_code == 409
