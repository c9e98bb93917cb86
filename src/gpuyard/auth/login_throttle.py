"""Login throttling: sliding windows kept in memory, per client address and per account.

- per address: at most ``ip_limit`` login attempts (any outcome, any account) per
  ``ip_window_s``;
- per account from one address: at most ``account_limit`` failed logins per
  ``account_window_s``; a successful login from that address clears them. Five wrong
  passwords from 1.2.3.4 close the account to 1.2.3.4 only: the owner elsewhere is not
  locked out by someone else's guessing;
- per account from all addresses: at most ``total_limit`` failures per ``total_window_s``
  (slower and larger). Over it, the account is closed to every address that failed on it
  within that window, and stays open to addresses that did not (the owner at a fresh
  address still logs in) - but those first tries have a budget of ``total_limit`` per
  window of their own. So an attacker with one or a few addresses cannot lock the owner
  out (one address makes at most ``account_limit`` failures per ``account_window_s``,
  below the total), and one with many addresses gets at most ``2 * total_limit`` guesses
  per account per ``total_window_s``, however many addresses they have. A success does
  not reset the account's total (the owner logging in must not give an attacker a fresh
  budget). Addresses from which someone logged in to the account in the last 30 days
  are exempt from the total (not from their own limits), so however many addresses an
  attacker has, the owner's usual ones still get in.

Every attempt let through counts as a failure at once, and a success takes it back: a
burst of concurrent guesses cannot all slip through before the first is found wrong.

Addresses are keyed as the client address resolved by api/client_address.py; IPv6
addresses by their /64 network (one host usually holds a whole /64, so per-address
limits keyed by single IPv6 addresses would be free to dodge).

An attempt over a limit is refused before the password is checked (429 with
Retry-After: the seconds until the limit it hit lets it through again) and is not counted
itself. Accounts are keyed by the normalised email as typed, whether or not the account
exists, so throttling reveals nothing about which accounts exist.

These windows live in each process: with N API processes an attacker gets N times the
budget. With ``GPUYARD_REDIS_URL`` the same rules run in Redis instead
(``services/bus/shared_throttle.py``), one budget for every process, with this class as
the fallback while Redis does not answer.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from gpuyard.domain.errors import RateLimited

#: Above this many keys a window sweeps the keys whose hits have all left it, at most
#: once per ``_SWEEP_EVERY_S`` (a sweep walks every key; under a flood of new keys it must
#: not run on every hit).
_SWEEP_AT = 10_000
_SWEEP_EVERY_S = 1.0
#: Past this many live keys the oldest are forgotten: memory stays bounded under any flood.
_MAX_KEYS = 200_000
#: How long an address from which someone logged in to an account stays known to it.
KNOWN_ADDRESS_S = 30 * 24 * 3600.0


class SlidingWindow:
    """At most ``limit`` hits per ``window_s`` seconds for each key."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = float("-inf")

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may hit again, or None when it may now."""
        hits = self._live(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return hits[0] + self.window_s - now

    def hit(self, key: str, now: float) -> None:
        if len(self._hits) >= _SWEEP_AT and now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_EVERY_S
            for known in list(self._hits):
                self._live(known, now)  # drops the key when its window is empty
        while len(self._hits) >= _MAX_KEYS:
            del self._hits[next(iter(self._hits))]  # the key first seen longest ago
        self._hits.setdefault(key, deque()).append(now)

    def unhit(self, key: str, at: float) -> None:
        """Take back the hit ``key`` made at ``at`` (a provisional count that turned out
        not to be one)."""
        hits = self._hits.get(key)
        if hits is None:
            return
        try:
            hits.remove(at)
        except ValueError:
            return
        if not hits:
            del self._hits[key]

    def empty_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` has no hit in its window, or None when it has none now."""
        hits = self._live(key, now)
        return None if hits is None else hits[-1] + self.window_s - now

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


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt let through, counted as a failure until :meth:`LoginThrottle.succeeded`
    or :meth:`LoginThrottle.not_a_guess` says otherwise."""

    pair: str
    account: str
    at: float
    in_total: bool  # counted in the account's total (else in its first tries)
    #: The attempt's member in the shared (Redis) windows; None: counted in this process.
    shared_member: str | None = None
    #: Which attempt of this process's throttle it is (two may share ``at``).
    serial: int = 0


@dataclass(frozen=True)
class ThrottleLimits:
    """The limits and windows of a throttle (the settings' ``login_*``)."""

    ip_limit: int
    ip_window_s: float
    account_limit: int
    account_window_s: float
    total_limit: int
    total_window_s: float


@dataclass(frozen=True)
class AttemptKeys:
    """The keys of one attempt's windows, named as a shared store files them."""

    ip: str
    account: str

    @classmethod
    def of(cls, attempt: LoginAttempt) -> AttemptKeys:
        return cls(attempt.pair.split("|", 1)[0], attempt.account)

    @property
    def pair(self) -> str:
        return _pair_key(self.ip, self.account)

    @property
    def by_ip(self) -> str:
        return f"ip:{self.ip}"

    @property
    def by_pair(self) -> str:
        return f"pair:{self.pair}"

    @property
    def by_account(self) -> str:
        return f"total:{self.account}"

    @property
    def first_tries(self) -> str:
        return f"first:{self.account}"

    @property
    def failed_from(self) -> str:
        return f"failed:{self.pair}"

    @property
    def known(self) -> str:
        return f"known:{self.pair}"

    def redis_keys(self) -> list[str]:
        """The windows in the order the shared throttle's script takes them."""
        return [
            self.by_ip, self.by_pair, self.by_account, self.first_tries, self.failed_from,
            self.known,
        ]  # fmt: skip


def attempt_keys(ip: str | None, account: str) -> AttemptKeys:
    """The keys of an attempt from ``ip`` on ``account`` (as :class:`LoginThrottle` keys)."""
    return AttemptKeys(_ip_key(ip), _account_key(account))


class LoginThrottle:
    def __init__(
        self,
        ip_limit: int,
        ip_window_s: float,
        account_limit: int,
        account_window_s: float,
        total_limit: int = 100,
        total_window_s: float = 3600.0,
    ) -> None:
        self.limits = ThrottleLimits(
            ip_limit, ip_window_s, account_limit, account_window_s, total_limit, total_window_s
        )
        self._by_ip = SlidingWindow(ip_limit, ip_window_s)
        #: Failures on one account from one address.
        self._by_pair = SlidingWindow(account_limit, account_window_s)
        #: Failures on one account from all addresses, up to its total.
        self._by_account = SlidingWindow(total_limit, total_window_s)
        #: Failures from addresses with no earlier failure, while over the total.
        self._first_tries = SlidingWindow(total_limit, total_window_s)
        #: The last failure on one account from one address, for a total's window.
        self._failed_from = SlidingWindow(1, total_window_s)
        #: Addresses from which someone logged in to the account: the total does not
        #: apply to them, so no number of attacking addresses locks out the owner's usual
        #: ones (their own per-address limits still do).
        self._known = SlidingWindow(1, KNOWN_ADDRESS_S)
        #: Whose failure ``_failed_from`` holds for each pair (the attempt's serial): two
        #: attempts may share a time, and taking back one must not take back the other's.
        self._failed_by: dict[str, int] = {}
        self._serials = itertools.count(1)
        self._lock = threading.Lock()

    def begin_attempt(self, ip: str | None, account: str, now: float) -> LoginAttempt:
        """Let an attempt from ``ip`` through, or raise RateLimited if a limit is reached.

        The attempt counts as a failure at once, before the password is checked: a burst
        of concurrent guesses would otherwise all pass the check before the first of them
        is found wrong (argon2 takes tens of milliseconds). A success, or an attempt that
        turned out not to be a guess, takes the count back."""
        ip_key, account_key = _ip_key(ip), _account_key(account)
        pair = _pair_key(ip_key, account_key)
        with self._lock:
            waits = [
                self._by_ip.retry_after(ip_key, now),
                self._by_pair.retry_after(pair, now),
                self._total_wait(pair, account_key, now),
            ]
            wait = max((w for w in waits if w is not None), default=None)
            if wait is not None:
                raise RateLimited(
                    "too many login attempts; try again later", retry_after=max(1, math.ceil(wait))
                )
            self._by_ip.hit(ip_key, now)
            self._by_pair.hit(pair, now)
            self._failed_from.clear(pair)  # only the last failure matters
            self._failed_from.hit(pair, now)
            serial = next(self._serials)
            self._failed_by.pop(pair, None)  # re-inserted last: the order is by age
            while len(self._failed_by) >= _MAX_KEYS:  # as the windows: the oldest goes
                del self._failed_by[next(iter(self._failed_by))]  # (its take-back: no-op)
            self._failed_by[pair] = serial
            in_total = self._by_account.retry_after(account_key, now) is None
            (self._by_account if in_total else self._first_tries).hit(account_key, now)
            return LoginAttempt(pair, account_key, now, in_total, serial=serial)

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the attempt was no failure, the address's failures on
        the account are cleared (not the account's total: the owner logging in must not
        give an attacker a fresh budget), and the address is known to the account."""
        with self._lock:
            self._take_back(attempt)
            self._by_pair.clear(attempt.pair)
            self._failed_from.clear(attempt.pair)
            self._failed_by.pop(attempt.pair, None)
            self._known.clear(attempt.pair)
            self._known.hit(attempt.pair, attempt.at)

    def not_a_guess(self, attempt: LoginAttempt) -> None:
        """The attempt failed for a reason that reveals nothing about the secret (a
        registration whose username is taken): it does not count as a failure."""
        with self._lock:
            self._take_back(attempt)
            self._by_pair.unhit(attempt.pair, attempt.at)
            if self._failed_by.get(attempt.pair) == attempt.serial:  # still its failure
                self._failed_from.clear(attempt.pair)
                del self._failed_by[attempt.pair]

    def _take_back(self, attempt: LoginAttempt) -> None:
        total = self._by_account if attempt.in_total else self._first_tries
        total.unhit(attempt.account, attempt.at)

    def _total_wait(self, pair: str, account: str, now: float) -> float | None:
        """How long the account's total keeps this address out; None when it does not."""
        over = self._by_account.retry_after(account, now)
        if over is None or self._known.empty_after(pair, now) is not None:
            return None
        failed_here = self._failed_from.empty_after(pair, now)
        if failed_here is not None:
            return min(over, failed_here)
        first_tries = self._first_tries.retry_after(account, now)
        return None if first_tries is None else min(over, first_tries)


def _ip_key(ip: str | None) -> str:
    """The address, or for IPv6 its /64 network; IPv4-mapped IPv6 as IPv4."""
    if not ip:
        return "unknown"
    try:
        address = ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def _account_key(account: str) -> str:
    return account.strip().lower()


def _pair_key(ip_key: str, account_key: str) -> str:
    return f"{ip_key}|{account_key}"  # an address key never holds "|"
