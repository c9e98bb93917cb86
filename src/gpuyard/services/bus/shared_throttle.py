"""The login throttle's windows in Redis: one budget for every API process.

The rules are those of :mod:`gpuyard.auth.login_throttle` (read its docstring), the
same windows and limits; each window is a sorted set (a hit's time as its score, the
attempt's id as its member) that expires with its last hit, and each step
(``begin_attempt``, ``succeeded``, ``not_a_guess``) is one Lua script, so concurrent
attempts on any number of processes see each other's counts.

Whose clock: Redis's (``TIME`` inside each script), never the API host's, so hosts whose
clocks disagree still agree on which hits are in a window, and a key's expiry is never
set from a skewed clock. Keys are ``PREFIX`` and a hash of the window's name: fixed
length whatever the e-mail text (hostile, long, odd code points), and no address or
e-mail at rest in Redis.

Redis down (or answering garbage): the attempt is decided by this process's own
windows (:class:`~gpuyard.auth.login_throttle.LoginThrottle`), logged once per outage.
That fails safe: never unlimited, never everyone locked out; only the budget is per
process again until Redis answers. A Redis that refuses connections is asked at every
attempt (that costs nothing); one that timed out (it hangs) is not asked again for
``HUNG_PAUSE_S``, so it holds one login a second for the timeout, not every login.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time

import redis

from gpuyard.auth.login_throttle import (
    KNOWN_ADDRESS_S,
    AttemptKeys,
    LoginAttempt,
    LoginThrottle,
    attempt_keys,
)
from gpuyard.domain.errors import RateLimited
from gpuyard.log import get_logger

log = get_logger(__name__)

PREFIX = "gpuyard:login:"
#: After Redis timed out, how long this process decides by its own windows without asking.
HUNG_PAUSE_S = 1.0

# KEYS: 1 by_ip, 2 by_pair, 3 by_account, 4 first_tries, 5 failed_from, 6 known
# ARGV: 1 now ("": Redis's own clock), 2 member, 3 ip_limit, 4 ip_window, 5 pair_limit,
#       6 pair_window, 7 total_limit, 8 total_window, 9 known_window
_COMMON = """
local now = tonumber(ARGV[1])
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local function live(key, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  return redis.call('ZCARD', key)
end
local function retry_after(key, limit, window)
  if live(key, window) < limit then return nil end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(first[2]) + window - now
end
local function empty_after(key, window)
  if live(key, window) == 0 then return nil end
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  return tonumber(last[2]) + window - now
end
local function hit(key, window, at, member)
  redis.call('ZADD', key, at, member)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local ms = math.ceil((tonumber(last[2]) + window - now) * 1000)
  if ms < 1 then ms = 1 end
  redis.call('PEXPIRE', key, ms)
end
"""

_BEGIN = (
    _COMMON
    + """
local member = ARGV[2]
local ip_limit, ip_window = tonumber(ARGV[3]), tonumber(ARGV[4])
local pair_limit, pair_window = tonumber(ARGV[5]), tonumber(ARGV[6])
local total_limit, total_window = tonumber(ARGV[7]), tonumber(ARGV[8])
local known_window = tonumber(ARGV[9])
local function total_wait()
  local over = retry_after(KEYS[3], total_limit, total_window)
  if over == nil or empty_after(KEYS[6], known_window) ~= nil then return nil end
  local failed_here = empty_after(KEYS[5], total_window)
  if failed_here ~= nil then return math.min(over, failed_here) end
  local first = retry_after(KEYS[4], total_limit, total_window)
  if first == nil then return nil end
  return math.min(over, first)
end
local wait = nil
for _, w in ipairs({retry_after(KEYS[1], ip_limit, ip_window) or false,
                    retry_after(KEYS[2], pair_limit, pair_window) or false,
                    total_wait() or false}) do
  if w and (wait == nil or w > wait) then wait = w end
end
if wait ~= nil then return {0, string.format('%.17g', wait)} end
hit(KEYS[1], ip_window, now, member)
hit(KEYS[2], pair_window, now, member)
redis.call('DEL', KEYS[5])
hit(KEYS[5], total_window, now, member)
local in_total = retry_after(KEYS[3], total_limit, total_window) == nil
local total_key = KEYS[4]
if in_total then total_key = KEYS[3] end
hit(total_key, total_window, now, member)
return {1, in_total and 1 or 0}
"""
)

# KEYS: 1 total (by_account or first_tries), 2 by_pair, 3 failed_from, 4 known
# ARGV: 1 now ("": Redis's own clock), 2 member, 3 known_window, 4 succeeded (1/0)
_SETTLE = (
    _COMMON
    + """
redis.call('ZREM', KEYS[1], ARGV[2])
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  hit(KEYS[4], tonumber(ARGV[3]), now, ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return 1
"""
)


def redis_key(window: str) -> str:
    """The Redis key of a window (``ip:...``, ``pair:...``): its name hashed, so the key's
    length is fixed and its text opaque (the e-mail is as typed: hostile until checked)."""
    name = window.encode("utf-8", "surrogatepass")
    return PREFIX + hashlib.blake2b(name, digest_size=16).hexdigest()


class SharedLoginThrottle:
    """:class:`~gpuyard.auth.login_throttle.LoginThrottle`'s interface over Redis, with
    ``local`` (this process's windows) as the fallback while Redis does not answer.

    ``redis_clock`` (the default): Redis's clock decides the windows and the ``now`` the
    callers pass only matters to the fallback; False: ``now`` decides (tests that hold
    the Redis windows to the in-process ones, on one made-up clock)."""

    def __init__(
        self, client: redis.Redis, local: LoginThrottle, *, redis_clock: bool = True
    ) -> None:
        self.client = client
        self.local = local
        self.redis_clock = redis_clock
        self._begin = client.register_script(_BEGIN)
        self._settle = client.register_script(_SETTLE)
        self._down = False
        self._down_lock = threading.Lock()
        self._ask_after = 0.0  # monotonic: Redis timed out; until then it is not asked

    def begin_attempt(self, ip: str | None, account: str, now: float) -> LoginAttempt:
        """Let the attempt through or raise RateLimited, counting it in Redis (see
        ``LoginThrottle.begin_attempt``); in this process's windows when Redis is down."""
        if self._hung():
            return self.local.begin_attempt(ip, account, now)
        keys = attempt_keys(ip, account)
        member = f"{now!r}:{secrets.token_hex(6)}"
        limits = self.local.limits
        try:
            answer = self._begin(
                keys=[redis_key(k) for k in keys.redis_keys()],
                args=[
                    self._now_arg(now), member,
                    limits.ip_limit, repr(limits.ip_window_s),
                    limits.account_limit, repr(limits.account_window_s),
                    limits.total_limit, repr(limits.total_window_s),
                    repr(KNOWN_ADDRESS_S),
                ],
            )  # fmt: skip
            allowed, detail = int(answer[0]), answer[1]
        except (redis.RedisError, OSError, ValueError, TypeError, IndexError) as exc:
            self._fell_back(exc)
            return self.local.begin_attempt(ip, account, now)
        self._back()
        if not allowed:
            wait = float(detail.decode() if isinstance(detail, bytes) else detail)
            raise RateLimited(
                "too many login attempts; try again later", retry_after=max(1, math.ceil(wait))
            )
        return LoginAttempt(
            keys.pair, keys.account, now, in_total=bool(int(detail)), shared_member=member
        )

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right (see ``LoginThrottle.succeeded``)."""
        self._settle_attempt(attempt, succeeded=True)

    def not_a_guess(self, attempt: LoginAttempt) -> None:
        """The attempt revealed nothing (see ``LoginThrottle.not_a_guess``)."""
        self._settle_attempt(attempt, succeeded=False)

    def _settle_attempt(self, attempt: LoginAttempt, *, succeeded: bool) -> None:
        if attempt.shared_member is None:  # decided by the local windows
            if succeeded:
                self.local.succeeded(attempt)
            else:
                self.local.not_a_guess(attempt)
            return
        if self._hung():
            return  # stays counted as a failure: fail safe, as below
        keys = AttemptKeys.of(attempt)
        total = keys.by_account if attempt.in_total else keys.first_tries
        try:
            self._settle(
                keys=[redis_key(total), redis_key(keys.by_pair), redis_key(keys.failed_from),
                      redis_key(keys.known)],
                args=[self._now_arg(attempt.at), attempt.shared_member, repr(KNOWN_ADDRESS_S),
                      "1" if succeeded else "0"],
            )  # fmt: skip
        except (redis.RedisError, OSError) as exc:
            # The attempt stays counted as a failure: fail safe (a budget one smaller).
            self._fell_back(exc)

    def _now_arg(self, now: float) -> str:
        return "" if self.redis_clock else repr(now)

    def _hung(self) -> bool:
        return self._ask_after > 0 and time.monotonic() < self._ask_after

    def _fell_back(self, exc: BaseException) -> None:
        if isinstance(exc, redis.TimeoutError | TimeoutError):
            self._ask_after = time.monotonic() + HUNG_PAUSE_S
        with self._down_lock:
            first, self._down = not self._down, True
        if first:
            log.warning(
                "login throttle: Redis does not answer; this process's own windows decide "
                "until it does",
                error=str(exc) or type(exc).__name__,
            )

    def _back(self) -> None:
        if self._down:
            with self._down_lock:
                was, self._down = self._down, False
            if was:
                log.info("login throttle: Redis answers again; the shared windows decide")
