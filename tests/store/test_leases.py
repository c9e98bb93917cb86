"""The scheduler lease: one holder at a time, renewable, lapses, can be handed over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpuyard.store.database import Database
from gpuyard.store.leases import release_lease, try_acquire_lease
from gpuyard.store.migrate import upgrade_to_head

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=10)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = (
        f"sqlite:///{tmp_path / 'l.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url)
    upgrade_to_head(database)
    return database


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
    db.dispose()


def test_release_hands_over_at_once(db: Database) -> None:
    assert take(db, "a", T0)
    with db.write() as session:
        release_lease(session, "scheduler", "b", T0)  # not b's to release: no effect
    assert not take(db, "b", T0 + timedelta(seconds=1))
    with db.write() as session:
        release_lease(session, "scheduler", "a", T0 + timedelta(seconds=1))
    assert take(db, "b", T0 + timedelta(seconds=2))
    db.dispose()
