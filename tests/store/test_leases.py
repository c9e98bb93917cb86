"""The scheduler lease: one holder at a time, renewable, lapses, can be handed over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gpuyard.store.database import Database
from gpuyard.store.leases import release_lease, try_acquire_lease

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=10)


def take(db: Database, holder: str, at: datetime) -> bool:
    with db.write() as session:
        return try_acquire_lease(session, "scheduler", holder, at, TTL)


def test_one_holder_at_a_time_until_it_lapses(db: Database) -> None:
    assert take(db, "a", T0)
    assert not take(db, "b", T0 + timedelta(seconds=1))
    assert take(db, "a", T0 + timedelta(seconds=5))  # renewal moves the expiry on
    assert not take(db, "b", T0 + timedelta(seconds=12))
    assert take(db, "b", T0 + timedelta(seconds=16))  # a stopped renewing: b takes over
    assert not take(db, "a", T0 + timedelta(seconds=17))


def test_release_hands_over_at_once(db: Database) -> None:
    assert take(db, "a", T0)
    with db.write() as session:
        release_lease(session, "scheduler", "b", T0)  # not b's to release: no effect
    assert not take(db, "b", T0 + timedelta(seconds=1))
    with db.write() as session:
        release_lease(session, "scheduler", "a", T0 + timedelta(seconds=1))
    assert take(db, "b", T0 + timedelta(seconds=2))
