"""JWT access tokens: a session id each, expiry against the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from gpuyard.auth.opaque_tokens import digest, is_api_token, new_api_token, new_invite_code
from gpuyard.auth.tokens import decode_access_token, issue_access_token
from gpuyard.domain.errors import Unauthenticated

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = "a-server-secret-of-plenty-of-bytes-0123456789"


def test_each_token_carries_its_own_session_id() -> None:
    first = issue_access_token(KEY, "user-1", 10, NOW)
    second = issue_access_token(KEY, "user-1", 10, NOW)
    assert first.jti != second.jti
    claims = decode_access_token(KEY, first.token, NOW)
    assert (claims.user_id, claims.jti) == ("user-1", first.jti)
    assert claims.expires_at == first.expires_at == NOW + timedelta(minutes=10)


def test_expiry_follows_the_clock() -> None:
    access = issue_access_token(KEY, "user-1", 10, NOW)
    decode_access_token(KEY, access.token, NOW + timedelta(minutes=9))
    with pytest.raises(Unauthenticated, match="expired"):
        decode_access_token(KEY, access.token, NOW + timedelta(minutes=10))


@pytest.mark.parametrize(
    "token",
    [
        issue_access_token(
            "another-server-secret-of-plenty-of-bytes-9876", "user-1", 10, NOW
        ).token,
        jwt.encode({"sub": "user-1", "exp": NOW + timedelta(minutes=5), "aud": "gpuyard"}, KEY),
        jwt.encode({"sub": "u", "jti": "j", "exp": NOW + timedelta(minutes=5)}, KEY),
        "not-a-jwt",
    ],
    ids=["wrong key", "no session id", "no audience", "garbage"],
)
def test_invalid_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthenticated, match="invalid"):
        decode_access_token(KEY, token, NOW)


def test_opaque_tokens_are_recognisable_and_digested() -> None:
    token = new_api_token()
    assert is_api_token(token)
    assert not is_api_token(new_invite_code())
    assert len(token) > 40
    assert digest(token) == digest(token) != digest(new_api_token())
