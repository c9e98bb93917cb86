"""Recently resolved callers, so a busy client is not looked up in the database on every
request.

Resolving a bearer token costs a JWT check and two reads (is the session revoked, is the
account still active and with which role); at hundreds of requests per second that is a
good part of each request. An entry lives at most ``ttl_s`` seconds and never past its
credential's expiry. This process forgets every entry the moment it changes an account or
a credential (logout, role or active flag, token revoked, user deleted), so here such a
change applies at once; another process sharing the database hears of it through the bus
(``announce``: ``services/bus``, with Redis or PostgreSQL) and forgets too, or, without
a bus or while it is down, sees it within ``ttl_s``. ``ttl_s = 0`` turns the cache off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from gpuyard.auth.caller import Caller
from gpuyard.auth.opaque_tokens import digest


class CallerCache:
    """Callers by token digest (the tokens themselves are not kept), with a time to live."""

    def __init__(self, ttl_s: float, max_entries: int = 4096) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Caller, datetime]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        #: Called after every :meth:`clear` to tell the other processes (the bus).
        self.announce: Callable[[], None] | None = None

    @property
    def generation(self) -> int:
        """Moves at every :meth:`clear`: read it before looking a token up, and pass it to
        :meth:`put`, so a lookup that raced a revocation is not kept."""
        return self._generation

    @property
    def enabled(self) -> bool:
        return self.ttl > timedelta(0)

    def get(self, token: str, now: datetime) -> Caller | None:
        """The caller resolved for ``token``, if it was resolved recently enough."""
        if not self.enabled:
            return None
        key = digest(token)
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            return None
        caller, valid_until = found
        if now >= valid_until:
            with self._lock:
                self._entries.pop(key, None)
            return None
        return caller

    def put(self, token: str, caller: Caller, now: datetime, generation: int) -> None:
        """Remember ``caller`` for ``token`` until the TTL or the credential runs out,
        unless the cache was cleared since ``generation`` was read (the lookup may have
        read the account just before a change that cleared it)."""
        if not self.enabled:
            return
        valid_until = now + self.ttl
        expires_at = caller.credential.expires_at if caller.credential else None
        if expires_at is not None:
            valid_until = min(valid_until, expires_at)
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare (that many live tokens); simpler than LRU
            self._entries[digest(token)] = (caller, valid_until)

    def clear(self) -> None:
        """Forget everyone: an account or a credential just changed (call it after the
        commit); the other processes are told to forget too."""
        self.clear_here()
        if self.announce is not None:
            self.announce()

    def clear_here(self) -> None:
        """Forget everyone in this process only (another process's change, heard)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
