"""Redeeming a routing ticket (services/routing/login.py) is single-use under
concurrency: of many simultaneous redemptions of one ticket exactly one gets a route
credential, the others a 401 naming ``ticket``; and the API's caller cache never hands a
route credential to the API. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from factories.app import add_user, make_context, make_settings, mint_token

from gpuyard.domain.errors import NotFound, Unauthenticated
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.auth import resolve_caller
from gpuyard.services.routing.login import (
    RouteSession,
    login_redirect,
    redeem_ticket,
    route_caller,
)

ROUTE = "https://apps.example.com/u/someone/w1/8888/"
RACERS = 8


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServiceContext]:
    database_url = (
        None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    )
    context = make_context(
        make_settings(
            tmp_path / "data",
            database_url,
            routing_public_url="https://apps.example.com",
            routing_dashboard_url="https://gpuyard.example.com",
        )
    )
    yield context
    context.db.dispose()


def _ticket(ctx: ServiceContext) -> str:
    session = mint_token(ctx, add_user(ctx, "someone@example.com", "pw-123456789"))
    location = login_redirect(ctx, session, ROUTE)
    assert location.startswith("https://apps.example.com/_gpuyard/session?ticket=")
    return parse_qs(urlsplit(location).query)["ticket"][0]


def test_one_ticket_redeemed_at_once_by_many_succeeds_once(ctx: ServiceContext) -> None:
    ticket = _ticket(ctx)

    def redeem(_: int) -> RouteSession | str:
        try:
            return redeem_ticket(ctx, ticket)
        except Unauthenticated as exc:
            return exc.errors[0].field

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(redeem, range(RACERS)))
    won = [r for r in results if isinstance(r, RouteSession)]
    assert len(won) == 1, results
    assert sorted(r for r in results if isinstance(r, str)) == ["ticket"] * (RACERS - 1)
    assert won[0].next_url == ROUTE
    assert won[0].secure is True


def test_a_route_credential_is_never_an_api_caller(ctx: ServiceContext) -> None:
    credential = redeem_ticket(ctx, _ticket(ctx)).token
    assert route_caller(ctx, credential, None).email == "someone@example.com"  # now cached
    with pytest.raises(Unauthenticated):
        resolve_caller(ctx, credential, None)


def test_without_a_dashboard_url_there_is_no_login_flow(tmp_path: Path) -> None:
    """Routes on the dashboard's host name need none (the session cookie reaches them):
    without GPUYARD_ROUTING_DASHBOARD_URL both endpoints are a 404, nothing is minted."""
    context = make_context(
        make_settings(tmp_path / "data", None, routing_public_url="https://apps.example.com")
    )
    try:
        session = mint_token(context, add_user(context, "someone@example.com", "pw-123456789"))
        with pytest.raises(NotFound):
            login_redirect(context, session, ROUTE)
        with pytest.raises(NotFound):
            redeem_ticket(context, "anything")
    finally:
        context.db.dispose()
