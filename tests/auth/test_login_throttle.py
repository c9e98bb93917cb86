"""Sliding windows for login attempts."""

from __future__ import annotations

import pytest

from gpuyard.auth.login_throttle import LoginThrottle, SlidingWindow
from gpuyard.domain.errors import RateLimited


def test_window_allows_limit_hits_then_says_how_long_to_wait() -> None:
    window = SlidingWindow(limit=3, window_s=10)
    for t in (0.0, 1.0, 2.0):
        assert window.retry_after("k", t) is None
        window.hit("k", t)
    assert window.retry_after("k", 4.0) == pytest.approx(6.0)
    assert window.retry_after("other", 4.0) is None
    assert window.retry_after("k", 10.0) is None  # the first hit left the window


def test_blocked_attempts_do_not_extend_the_block() -> None:
    throttle = LoginThrottle(ip_limit=2, ip_window_s=60, account_limit=100, account_window_s=60)
    throttle.begin_attempt("1.2.3.4", "a@x", 0)
    throttle.begin_attempt("1.2.3.4", "b@x", 1)
    for t in (2, 30, 59):
        with pytest.raises(RateLimited) as refused:
            throttle.begin_attempt("1.2.3.4", "c@x", t)
        assert refused.value.retry_after == max(1, 60 - t)
    throttle.begin_attempt("1.2.3.4", "c@x", 60.5)
    throttle.begin_attempt("5.6.7.8", "c@x", 0)  # other addresses are unaffected


def test_account_failures_are_keyed_case_insensitively_and_cleared_by_success() -> None:
    throttle = LoginThrottle(ip_limit=100, ip_window_s=60, account_limit=2, account_window_s=300)
    throttle.record_failure("Dev@Example.com", 0)
    throttle.record_failure("dev@example.com ", 1)
    with pytest.raises(RateLimited):
        throttle.begin_attempt("1.1.1.1", "DEV@example.com", 2)
    throttle.record_success("dev@example.com")
    throttle.begin_attempt("1.1.1.1", "dev@example.com", 3)


def test_memory_is_bounded_by_sweeping_empty_windows() -> None:
    window = SlidingWindow(limit=1, window_s=1)
    for i in range(20_000):
        window.hit(f"ip-{i}", float(i))
    assert len(window._hits) <= 10_001
