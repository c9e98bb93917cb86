"""Login throttling: sliding windows per client IP and per account, kept in memory.

- per IP: at most ``ip_limit`` login attempts (any outcome) per ``ip_window_s``;
- per account: at most ``account_limit`` failed logins per ``account_window_s``; a
  successful login clears the account's failures.

An attempt over a limit is refused before the password is checked (429 with
Retry-After: the seconds until the oldest counted attempt leaves its window) and is not
counted itself. Accounts are keyed by the email as typed (lower-cased), whether or not
the account exists, so throttling reveals nothing about which accounts exist.

The windows live in each process: with N API processes an attacker gets N times the
budget. That still turns an online guessing attack from thousands of tries a second into
a handful a minute; a shared store (Redis) can replace this class when it matters.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from gpuyard.domain.errors import RateLimited

#: Above this many keys, windows that have emptied are swept (bounds memory).
_SWEEP_AT = 10_000


class SlidingWindow:
    """At most ``limit`` hits per ``window_s`` seconds for each key."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may hit again, or None when it may now."""
        hits = self._live(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return hits[0] + self.window_s - now

    def hit(self, key: str, now: float) -> None:
        if len(self._hits) >= _SWEEP_AT:
            for known in list(self._hits):
                self._live(known, now)  # drops the key when its window is empty
        self._hits.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _live(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits


class LoginThrottle:
    def __init__(
        self, ip_limit: int, ip_window_s: float, account_limit: int, account_window_s: float
    ) -> None:
        self._by_ip = SlidingWindow(ip_limit, ip_window_s)
        self._by_account = SlidingWindow(account_limit, account_window_s)
        self._lock = threading.Lock()

    def begin_attempt(self, ip: str | None, account: str, now: float) -> None:
        """Count an attempt from ``ip``, or raise RateLimited if a limit is reached."""
        with self._lock:
            waits = [
                self._by_ip.retry_after(_ip_key(ip), now),
                self._by_account.retry_after(_account_key(account), now),
            ]
            wait = max((w for w in waits if w is not None), default=None)
            if wait is not None:
                raise RateLimited(
                    "too many login attempts; try again later", retry_after=max(1, math.ceil(wait))
                )
            self._by_ip.hit(_ip_key(ip), now)

    def record_failure(self, account: str, now: float) -> None:
        with self._lock:
            self._by_account.hit(_account_key(account), now)

    def record_success(self, account: str) -> None:
        with self._lock:
            self._by_account.clear(_account_key(account))


def _ip_key(ip: str | None) -> str:
    return ip or "unknown"


def _account_key(account: str) -> str:
    return account.strip().lower()
