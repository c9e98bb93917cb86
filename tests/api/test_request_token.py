"""The live stream re-checks its caller with the very token Authorize accepted: one
function picks between the bearer token and the session cookie for both."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from gpuyard.api.authorization import SESSION_COOKIE, request_token


def _request(headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"Authorization": "Bearer abc", "Cookie": f"{SESSION_COOKIE}=sess"}, "abc"),
        ({"Authorization": "bearer abc"}, "abc"),
        ({"Cookie": f"{SESSION_COOKIE}=sess"}, "sess"),
        ({"Authorization": "Basic dXNlcjpwYXNz", "Cookie": f"{SESSION_COOKIE}=sess"}, "sess"),
        ({"Cookie": "other=x"}, ""),
        ({}, ""),
    ],
    ids=["bearer first", "scheme any case", "cookie", "not bearer", "other cookie", "none"],
)
def test_the_token_is_the_one_authorize_takes(headers: dict[str, str], token: str) -> None:
    assert asyncio.run(request_token(_request(headers))) == token
