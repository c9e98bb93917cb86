"""Login throttling is not a weapon: someone guessing an account's password from their
addresses does not lock its owner out from theirs (auth/login_throttle.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_context, make_settings
from factories.clock import ManualClock
from fastapi.testclient import TestClient

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext


def _login(client: TestClient, password: str, email: str = ADMIN_EMAIL) -> int:
    body = {"email": email, "password": password}
    return client.post("/api/v1/auth/login", json=body).status_code


def test_an_attacker_at_one_address_does_not_lock_the_owner_out(ctx: ServiceContext) -> None:
    app = create_app(ctx)
    attacker = TestClient(app, client=("1.2.3.4", 4000))
    owner = TestClient(app, client=("5.6.7.8", 4000))
    statuses = [_login(attacker, f"guess-{i}") for i in range(8)]
    assert statuses == [401] * 5 + [429] * 3  # defaults: 5 failures per 5 minutes
    # Not even the right password gets through from there (the guessing must stop)...
    assert _login(attacker, ADMIN_PASSWORD, email=ADMIN_EMAIL.upper()) == 429
    # ...but the owner logs in from their own address.
    assert _login(owner, ADMIN_PASSWORD) == 200


@pytest.fixture
def small_total(tmp_path: Path, database_url: str | None) -> Iterator[ServiceContext]:
    settings = make_settings(
        tmp_path / "data",
        database_url,
        login_account_total_max_failures=10,
        login_account_total_window_s=3600,
    )
    context = make_context(settings)
    context.clock = ManualClock(datetime.now(UTC))
    yield context
    context.db.dispose()


def test_over_the_account_total_the_owner_at_a_fresh_address_still_gets_in(
    small_total: ServiceContext,
) -> None:
    ctx = small_total
    clock: ManualClock = ctx.clock  # type: ignore[assignment]
    app = create_app(ctx)
    attackers = [TestClient(app, client=(f"198.51.100.{i}", 4000)) for i in range(2)]
    for attacker in attackers:
        assert [_login(attacker, "guess") for _ in range(5)] == [401] * 5
    clock.advance(301)  # their per-address windows have passed, the account's has not
    assert [_login(a, "guess") for a in attackers] == [429, 429]
    owner = TestClient(app, client=("5.6.7.8", 4000))
    assert _login(owner, ADMIN_PASSWORD) == 200
    # Many addresses get one guess each, ten in all, then the account is closed to all.
    botnet = [TestClient(app, client=(f"203.0.113.{i}", 4000)) for i in range(12)]
    assert [_login(b, "guess") for b in botnet] == [401] * 10 + [429] * 2
    assert _login(TestClient(app, client=("5.6.7.9", 4000)), ADMIN_PASSWORD) == 429
    clock.advance(3600)
    assert _login(owner, ADMIN_PASSWORD) == 200
