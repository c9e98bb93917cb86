"""Sliding windows for login attempts."""

from __future__ import annotations

import pytest

from gpuyard.auth import login_throttle
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
    throttle = LoginThrottle(ip_limit=100, ip_window_s=60, account_limit=3, account_window_s=300)
    throttle.begin_attempt("1.1.1.1", "Dev@Example.com", 0)  # wrong password
    throttle.begin_attempt("1.1.1.1", "dev@example.com ", 1)  # wrong password
    right = throttle.begin_attempt("1.1.1.1", "dev@example.com", 1.5)
    throttle.succeeded(right)  # clears the address's failures on the account
    for t in (2, 3, 4):
        throttle.begin_attempt("1.1.1.1", "DEV@example.com", t)
    with pytest.raises(RateLimited):
        throttle.begin_attempt("1.1.1.1", "dev@example.com", 5)


def test_a_burst_of_concurrent_guesses_cannot_outrun_the_count() -> None:
    """Attempts count as failures as they begin: thirty guesses sent at once (none of them
    checked yet) get no further than five."""
    throttle = LoginThrottle(ip_limit=30, ip_window_s=60, account_limit=5, account_window_s=300)
    let_through = 0
    for _ in range(30):
        try:
            throttle.begin_attempt("1.2.3.4", "admin@x", 0)
            let_through += 1
        except RateLimited:
            pass
    assert let_through == 5


def test_an_attempt_that_is_not_a_guess_is_not_counted() -> None:
    throttle = LoginThrottle(ip_limit=100, ip_window_s=60, account_limit=1, account_window_s=300)
    throttle.not_a_guess(throttle.begin_attempt("1.1.1.1", "new@x", 0))
    throttle.begin_attempt("1.1.1.1", "new@x", 1)  # still allowed: the first did not count


def _hammer(throttle: LoginThrottle, ip: str, account: str, now: float) -> bool:
    """One wrong password from ``ip``; False when it was refused before being checked."""
    try:
        throttle.begin_attempt(ip, account, now)
    except RateLimited:
        return False
    return True


def test_failures_from_one_address_do_not_lock_the_owner_out_elsewhere() -> None:
    throttle = LoginThrottle(
        ip_limit=30, ip_window_s=60, account_limit=5, account_window_s=300, total_limit=100
    )
    # An attacker at 1.2.3.4 guesses for an hour, as fast as the limits let them.
    tried = sum(_hammer(throttle, "1.2.3.4", "admin@x", t) for t in range(0, 3600, 2))
    assert tried == 5 * 3600 // 300  # five per five minutes, far below the total
    with pytest.raises(RateLimited):
        throttle.begin_attempt("1.2.3.4", "admin@x", 3599)
    throttle.succeeded(throttle.begin_attempt("5.6.7.8", "admin@x", 3599))  # the owner


def test_over_the_total_only_addresses_without_failures_may_try() -> None:
    throttle = LoginThrottle(
        ip_limit=30,
        ip_window_s=60,
        account_limit=5,
        account_window_s=300,
        total_limit=10,
        total_window_s=3600,
    )
    for i in range(2):  # two attackers reach the account's total
        assert [_hammer(throttle, f"10.0.0.{i}", "admin@x", i) for _ in range(5)] == [True] * 5
    # Their pair windows pass, but they failed within the hour: still refused.
    with pytest.raises(RateLimited) as refused:
        throttle.begin_attempt("10.0.0.0", "admin@x", 400)
    assert refused.value.retry_after == 3600 - 400
    # The owner at a fresh address may try, and does get in.
    throttle.succeeded(throttle.begin_attempt("5.6.7.8", "admin@x", 400))
    # After the hour the attackers' failures have left the window.
    throttle.begin_attempt("10.0.0.0", "admin@x", 3601)


def test_distributed_guessing_is_bounded_however_many_addresses() -> None:
    total = 10
    throttle = LoginThrottle(
        ip_limit=30, ip_window_s=60, account_limit=5, account_window_s=300, total_limit=total
    )
    tried = sum(_hammer(throttle, f"10.0.{i // 250}.{i % 250}", "admin@x", 1) for i in range(500))
    assert tried == 2 * total  # the total, then as many first tries from fresh addresses
    with pytest.raises(RateLimited):
        throttle.begin_attempt("5.6.7.8", "admin@x", 2)


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        pytest.param("2001:db8::1", "2001:db8::ffff:1", True, id="ipv6-same-64"),
        pytest.param("2001:db8::1", "2001:db8:0:1::1", False, id="ipv6-other-64"),
        pytest.param("::ffff:1.2.3.4", "1.2.3.4", True, id="ipv4-mapped"),
        pytest.param("1.2.3.4", "1.2.3.5", False, id="ipv4-neighbours"),
    ],
)
def test_addresses_are_keyed_by_host_and_ipv6_by_its_64(
    first: str, second: str, shared: bool
) -> None:
    throttle = LoginThrottle(ip_limit=1, ip_window_s=60, account_limit=5, account_window_s=300)
    throttle.begin_attempt(first, "a@x", 0)
    if shared:
        with pytest.raises(RateLimited):
            throttle.begin_attempt(second, "b@x", 1)
    else:
        throttle.begin_attempt(second, "b@x", 1)


def test_the_owners_usual_address_is_not_locked_out_by_any_number_of_attackers() -> None:
    total = 10
    throttle = LoginThrottle(
        ip_limit=30, ip_window_s=60, account_limit=5, account_window_s=300, total_limit=total
    )
    throttle.succeeded(throttle.begin_attempt("5.6.7.8", "admin@x", 0))  # the owner, earlier
    for i in range(500):  # a botnet uses up the total and the first tries
        _hammer(throttle, f"10.0.{i // 250}.{i % 250}", "admin@x", 10)
    with pytest.raises(RateLimited):
        throttle.begin_attempt("9.9.9.9", "admin@x", 11)  # a fresh address: closed
    throttle.succeeded(throttle.begin_attempt("5.6.7.8", "admin@x", 11))  # the owner's: open


def test_memory_is_bounded_by_sweeping_empty_windows() -> None:
    window = SlidingWindow(limit=1, window_s=1)
    for i in range(20_000):
        window.hit(f"ip-{i}", float(i))
    assert len(window._hits) <= 10_002


def test_a_flood_of_live_keys_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(login_throttle, "_MAX_KEYS", 50_000)
    window = SlidingWindow(limit=1, window_s=3600)
    for i in range(60_000):  # all live within the hour: nothing to sweep
        window.hit(f"ip-{i}", i / 1000)
    assert len(window._hits) == 50_000
    assert "ip-59999" in window._hits
    assert "ip-0" not in window._hits


def test_taking_back_one_of_two_attempts_at_one_instant_keeps_the_others_failure() -> None:
    # Over the account's total, an address whose last attempt failed is refused. Two
    # attempts from it at the same instant: the first turns out not to be a guess, the
    # second stays a failure, so the address is still refused (taking back "the hit at
    # that time" took back the second's).
    throttle = LoginThrottle(100, 60, 2, 60, total_limit=3, total_window_s=600)
    first = throttle.begin_attempt("10.0.0.2", "b@x", 5.0)
    throttle.begin_attempt("10.0.0.2", "b@x", 5.0)  # a wrong password: stays counted
    throttle.not_a_guess(first)
    throttle.begin_attempt("10.0.0.1", "b@x", 5.0)
    throttle.begin_attempt("10.0.0.1", "b@x", 5.0)  # the account's total is reached
    with pytest.raises(RateLimited):
        throttle.begin_attempt("10.0.0.2", "b@x", 5.0)
    throttle.begin_attempt("10.0.0.3", "b@x", 5.0)  # an address with no failure may try


def test_the_owners_of_failures_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_throttle, "_MAX_KEYS", 1_000)
    throttle = LoginThrottle(10, 1, 10, 1, total_limit=10, total_window_s=1)
    for i in range(5_000):
        throttle.begin_attempt(f"10.0.{i // 250}.{i % 250}", f"u{i}@x", float(i))
    assert len(throttle._failed_by) <= 1_000
    assert "u4999@x" in next(reversed(throttle._failed_by))  # the newest is kept
