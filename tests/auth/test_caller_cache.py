"""The caller cache: entries live for the TTL, never past the credential, and go at once
when this process changes an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gpuyard.auth.caller import Caller, Credential, CredentialKind
from gpuyard.auth.caller_cache import CallerCache
from gpuyard.auth.roles import Role

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _caller(expires_at: datetime | None = None) -> Caller:
    credential = Credential(CredentialKind.SESSION, "jti-1", expires_at)
    return Caller("u1", "a@example.com", Role.USER, None, credential)


def test_an_entry_lives_for_the_ttl() -> None:
    cache = CallerCache(ttl_s=2)
    cache.put("tok", _caller(), T0, cache.generation)
    assert cache.get("tok", T0 + timedelta(seconds=1.9)) == _caller()
    assert cache.get("tok", T0 + timedelta(seconds=2)) is None
    assert cache.get("other", T0) is None


def test_an_entry_never_outlives_its_credential() -> None:
    cache = CallerCache(ttl_s=60)
    cache.put("tok", _caller(expires_at=T0 + timedelta(seconds=5)), T0, cache.generation)
    assert cache.get("tok", T0 + timedelta(seconds=4)) is not None
    assert cache.get("tok", T0 + timedelta(seconds=5)) is None


def test_clear_forgets_everyone_and_zero_ttl_keeps_no_one() -> None:
    cache = CallerCache(ttl_s=2)
    cache.put("a", _caller(), T0, cache.generation)
    cache.put("b", _caller(), T0, cache.generation)
    cache.clear()
    assert cache.get("a", T0) is None
    assert cache.get("b", T0) is None
    off = CallerCache(ttl_s=0)
    off.put("a", _caller(), T0, off.generation)
    assert off.get("a", T0) is None


def test_a_full_cache_starts_over_rather_than_growing() -> None:
    cache = CallerCache(ttl_s=2, max_entries=3)
    for token in ("a", "b", "c", "d"):
        cache.put(token, _caller(), T0, cache.generation)
    assert cache.get("d", T0) is not None
    assert sum(cache.get(t, T0) is not None for t in ("a", "b", "c")) == 0


def test_a_lookup_that_raced_a_clear_is_not_kept() -> None:
    """The account was read, then a revocation cleared the cache, then the lookup tried
    to remember what it read: it must not."""
    cache = CallerCache(ttl_s=60)
    seen = cache.generation
    cache.clear()  # e.g. a logout committed while the lookup was reading
    cache.put("tok", _caller(), T0, seen)
    assert cache.get("tok", T0) is None
    cache.put("tok", _caller(), T0, cache.generation)
    assert cache.get("tok", T0) is not None
