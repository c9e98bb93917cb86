"""Routing tickets and route credentials (auth/route_tokens.py): each audience is its
own, none is a dashboard session, and expiry follows the session's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.auth.route_tokens import (
    ROUTE_AUDIENCE,
    TICKET_AUDIENCE,
    decode_route_token,
    issue_route_token,
)
from gpuyard.auth.tokens import decode_access_token, issue_access_token
from gpuyard.domain.errors import Unauthenticated

SECRET = "s" * 48
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _issue(audience: str, *, session_minutes: float = 30, minutes: float = 1) -> str:
    token, _claims = issue_route_token(
        SECRET,
        audience=audience,
        user_id="u1",
        session_id="sess-1",
        session_expires_at=NOW + timedelta(minutes=session_minutes),
        session_issued_at=NOW - timedelta(minutes=1),
        expires_at=NOW + timedelta(minutes=minutes),
        next_url="https://apps.example.com/u/a/w/80/",
    )
    return token


def test_a_ticket_says_who_which_session_and_where() -> None:
    claims = decode_route_token(SECRET, _issue(TICKET_AUDIENCE), audience=TICKET_AUDIENCE, now=NOW)
    assert (claims.user_id, claims.session_id) == ("u1", "sess-1")
    assert claims.next_url == "https://apps.example.com/u/a/w/80/"
    assert claims.expires_at == NOW + timedelta(minutes=1)


@given(st.sampled_from([TICKET_AUDIENCE, ROUTE_AUDIENCE]))
def test_no_audience_passes_for_another_nor_for_a_session(audience: str) -> None:
    token = _issue(audience)
    other = ROUTE_AUDIENCE if audience == TICKET_AUDIENCE else TICKET_AUDIENCE
    with pytest.raises(Unauthenticated):
        decode_route_token(SECRET, token, audience=other, now=NOW)
    with pytest.raises(Unauthenticated):
        decode_access_token(SECRET, token, NOW)
    session = issue_access_token(SECRET, "u1", 30, NOW).token
    with pytest.raises(Unauthenticated):
        decode_route_token(SECRET, session, audience=audience, now=NOW)


@given(st.integers(min_value=0, max_value=3600))
def test_nothing_outlives_its_session(seconds_after: int) -> None:
    """A credential made to last longer than its session still ends with the session."""
    token = _issue(ROUTE_AUDIENCE, session_minutes=10, minutes=120)
    later = NOW + timedelta(seconds=seconds_after)
    if seconds_after < 600:
        assert decode_route_token(SECRET, token, audience=ROUTE_AUDIENCE, now=later)
    else:
        with pytest.raises(Unauthenticated):
            decode_route_token(SECRET, token, audience=ROUTE_AUDIENCE, now=later)


@given(st.text(max_size=200) | st.just("x" * 5000))
def test_garbage_is_unauthenticated_never_a_crash(text: str) -> None:
    with pytest.raises(Unauthenticated):
        decode_route_token(SECRET, text, audience=ROUTE_AUDIENCE, now=NOW)


def test_another_secret_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        decode_route_token("t" * 48, _issue(TICKET_AUDIENCE), audience=TICKET_AUDIENCE, now=NOW)
