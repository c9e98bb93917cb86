"""The login throttle's windows in a real Redis (services/bus/shared_throttle.py): the same
decisions as the in-process windows on any sequence of attempts, and one budget for every
API process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_context, make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from support.local_server import start_or_skip
from support.redis import RedisServer

from gpuyard.api.app import create_app
from gpuyard.auth.login_throttle import LoginAttempt, LoginThrottle
from gpuyard.domain.errors import RateLimited
from gpuyard.services.bus.redis_bus import RedisConnection
from gpuyard.services.bus.shared_throttle import SharedLoginThrottle

#: Small limits, so that a short sequence reaches every one of them.
LIMITS = {
    "ip_limit": 4,
    "ip_window_s": 10.0,
    "account_limit": 2,
    "account_window_s": 20.0,
    "total_limit": 3,
    "total_window_s": 40.0,
}
ADDRESSES = ["10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2", None]
ACCOUNTS = ["a@example.com", "B@example.com", "b@example.com "]

begin = st.tuples(
    st.just("begin"),
    st.sampled_from(ADDRESSES),
    st.sampled_from(ACCOUNTS),
    # Mostly bursts (every limit is reached), sometimes long enough for windows to pass.
    st.one_of(
        st.just(0.0),
        st.floats(min_value=0, max_value=2, allow_nan=False),
        st.floats(min_value=0, max_value=60, allow_nan=False),
    ),
)
settle = st.tuples(st.sampled_from(["succeeded", "not_a_guess"]), st.integers(0, 50))


def outcome(throttle: Any, ip: str | None, account: str, now: float) -> Any:
    try:
        attempt = throttle.begin_attempt(ip, account, now)
    except RateLimited as refused:
        return ("refused", refused.retry_after), None
    return ("let through", attempt.in_total), attempt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(begin, settle), max_size=60))
def test_the_windows_in_redis_decide_as_the_in_process_ones(
    redis_server: RedisServer, steps: list[tuple[Any, ...]]
) -> None:
    client = redis.Redis.from_url(redis_server.url_for(5))
    client.flushdb()
    local = LoginThrottle(**LIMITS)
    # The test's clock, not Redis's, so that both throttles see the same times.
    shared = SharedLoginThrottle(client, LoginThrottle(**LIMITS), redis_clock=False)
    now = 1_000_000.0
    open_attempts: list[tuple[LoginAttempt, LoginAttempt]] = []
    try:
        for step in steps:
            if step[0] == "begin":
                _, ip, account, elapsed = step
                now += elapsed
                expected, local_attempt = outcome(local, ip, account, now)
                got, shared_attempt = outcome(shared, ip, account, now)
                assert got == expected, (step, now)
                if local_attempt is not None and shared_attempt is not None:
                    assert shared_attempt.shared_member is not None  # decided in Redis
                    open_attempts.append((local_attempt, shared_attempt))
            elif open_attempts:
                verdict, index = step
                local_attempt, shared_attempt = open_attempts.pop(index % len(open_attempts))
                getattr(local, verdict)(local_attempt)
                getattr(shared, verdict)(shared_attempt)
    finally:
        client.close()


def test_failed_logins_spread_over_two_apis_share_one_budget(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(*client.keys("gpuyard:login:*") or ["none"])
    settings_ = make_settings(tmp_path / "data", None, redis_url=redis_server.url)
    one, two = make_context(settings_), make_context(settings_)
    try:
        apis = [TestClient(create_app(one)), TestClient(create_app(two))]
        wrong = {"email": ADMIN_EMAIL, "password": "wrong-password-1"}
        budget = settings_.login_account_max_failures  # 5 per account from one address
        # Alternating between the two processes: each sees fewer than the budget itself.
        codes = [
            apis[i % 2].post("/api/v1/auth/login", json=wrong).status_code for i in range(budget)
        ]
        assert codes == [401] * budget
        for api in apis:
            refused = api.post(
                "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
    finally:
        for ctx in (one, two):
            ctx.db.dispose()
        client.close()


@pytest.mark.parametrize("verdict", ["succeeded", "not_a_guess"])
def test_an_attempt_decided_locally_is_settled_locally(
    redis_server: RedisServer, verdict: str
) -> None:
    # A Redis that is not there (a closed port): the process's own windows decide. The
    # client is the one a process makes (one short retry): redis-py's default retries ten
    # times with backoff, some 3 s per refused command.
    dead = RedisConnection("redis://127.0.0.1:1/0").client
    local = LoginThrottle(**LIMITS)
    throttle = SharedLoginThrottle(dead, local)
    attempts = [throttle.begin_attempt("10.9.9.9", "c@example.com", 5.0) for _ in range(2)]
    assert all(a.shared_member is None for a in attempts)
    with pytest.raises(RateLimited):  # the local windows count: never unlimited
        throttle.begin_attempt("10.9.9.9", "c@example.com", 5.0)
    getattr(throttle, verdict)(attempts[0])
    throttle.begin_attempt("10.9.9.9", "c@example.com", 5.0)  # one failure taken back


def test_an_outage_is_logged_once_and_its_end_once(tmp_path: Path) -> None:
    with start_or_skip(RedisServer()) as server:
        client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5)
        throttle = SharedLoginThrottle(client, LoginThrottle(**LIMITS))
        with capture_logs() as logs:
            server.halt()
            for second in range(3):
                throttle.begin_attempt(f"10.1.1.{second}", "d@example.com", float(second))
            server.resume()
            attempt = throttle.begin_attempt("10.1.1.9", "d@example.com", 9.0)
        client.close()
    assert attempt.shared_member is not None
    events = [entry["event"] for entry in logs if "login throttle" in entry["event"]]
    assert len(events) == 2, events
    assert "does not answer" in events[0]
    assert "answers again" in events[1]


def test_api_hosts_with_skewed_clocks_share_one_budget_on_redis_time(
    redis_server: RedisServer,
) -> None:
    # Two API hosts a day apart (a dead NTP daemon): Redis's clock decides which hits are
    # in a window, so neither host escapes the other's counts or waits a day.
    client = redis.Redis.from_url(redis_server.url_for(6))
    client.flushdb()
    behind = SharedLoginThrottle(client, LoginThrottle(**LIMITS))
    ahead = SharedLoginThrottle(client, LoginThrottle(**LIMITS))
    day, now = 86_400.0, time.time()
    try:
        for _ in range(LIMITS["account_limit"]):
            behind.begin_attempt("10.7.7.7", "skew@example.com", now - day)
        for host, at in ((ahead, now + day), (behind, now - day)):
            with pytest.raises(RateLimited) as refused:
                host.begin_attempt("10.7.7.7", "skew@example.com", at)
            assert 1 <= refused.value.retry_after <= LIMITS["account_window_s"]
        for key in client.keys("*"):  # every window expires with its last hit, not a day late
            assert 0 < client.pttl(key) <= LIMITS["total_window_s"] * 1000
    finally:
        client.close()


def test_hostile_account_text_makes_short_opaque_keys(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url_for(7))
    client.flushdb()
    throttle = SharedLoginThrottle(client, LoginThrottle(**LIMITS))
    hostile = "|pair:x|\ud800\x00" + "a" * 10_000 + "@example.com"
    try:
        attempt = throttle.begin_attempt("10.8.8.8", hostile, 1.0)
        assert attempt.shared_member is not None  # decided in Redis, not by the fallback
        keys = client.keys("*")
        assert keys
        assert all(len(key) <= 80 and b"example" not in key for key in keys), keys
        # Settled under the same keys: the success emptied the pair's window, whose whole
        # budget is there again, and then spent.
        throttle.succeeded(attempt)
        for _ in range(LIMITS["account_limit"]):
            throttle.begin_attempt("10.8.8.8", hostile, 2.0)
        with pytest.raises(RateLimited):
            throttle.begin_attempt("10.8.8.8", hostile, 2.0)
    finally:
        client.close()


def test_a_hung_redis_holds_one_login_a_second_not_every_login() -> None:
    with start_or_skip(RedisServer()) as server:
        connection = RedisConnection(server.url)  # the production timeouts
        throttle = SharedLoginThrottle(connection.client, LoginThrottle(**LIMITS))
        try:
            assert throttle.begin_attempt("10.2.2.1", "e@example.com", 1.0).shared_member
            server.freeze()
            started = time.monotonic()
            first = throttle.begin_attempt("10.2.2.2", "e@example.com", 2.0)
            assert first.shared_member is None  # decided here
            assert time.monotonic() - started < 1.5
            started = time.monotonic()
            for last in range(3, 6):  # the next ones do not wait for Redis at all
                attempt = throttle.begin_attempt(f"10.2.2.{last}", "f@example.com", 3.0)
                assert attempt.shared_member is None
                throttle.succeeded(attempt)
            assert time.monotonic() - started < 0.2
            server.thaw()
            for tries in range(50):  # asked again within HUNG_PAUSE_S
                if throttle.begin_attempt(
                    f"10.2.3.{tries}", f"g{tries}@example.com", 4.0
                ).shared_member:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("Redis was not asked again")
        finally:
            server.thaw()
            connection.close()
