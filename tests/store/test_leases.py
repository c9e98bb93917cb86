"""The scheduler lease: one holder at a time, renewable, lapses, can be handed over; its
fencing token grows with each new term and fences off the writes of the old ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuyard.store.database import Database
from gpuyard.store.leases import acquire_lease, fence_holds, release_lease, try_acquire_lease

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


def token(db: Database, holder: str, at: datetime, name: str = "scheduler") -> int | None:
    with db.write() as session:
        return acquire_lease(session, name, holder, at, TTL)


def fenced_write(db: Database, holder: str, held_token: int, name: str = "scheduler") -> bool:
    with db.write() as session:
        return fence_holds(session, name, holder, held_token)


def test_a_renewal_keeps_the_token_and_a_takeover_increments_it(db: Database) -> None:
    assert token(db, "a", T0) == 1
    assert token(db, "a", T0 + timedelta(seconds=5)) == 1
    assert token(db, "b", T0 + timedelta(seconds=6)) is None
    assert token(db, "b", T0 + timedelta(seconds=16)) == 2  # a lapsed
    assert not fenced_write(db, "a", 1)  # a's old term is fenced off
    assert fenced_write(db, "b", 2)
    # The same holder retaking its own lapsed lease starts a new term too: a tick of its
    # old term still in flight is fenced.
    assert token(db, "b", T0 + timedelta(seconds=40)) == 3
    assert not fenced_write(db, "b", 2)
    with db.write() as session:
        release_lease(session, "scheduler", "b", T0 + timedelta(seconds=41))
    assert token(db, "a", T0 + timedelta(seconds=42)) == 4


HOLDERS = ("a", "b", "c")
#: One step: a holder tries to take or renew, the clock moves on (seconds), or a holder
#: does a fenced write with the last token it was granted.
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.sampled_from(HOLDERS)),
        st.tuples(st.just("advance"), st.sampled_from([1.0, 4.0, 9.0, 11.0, 30.0])),
        st.tuples(st.just("write"), st.sampled_from(HOLDERS)),
        st.tuples(st.just("release"), st.sampled_from(HOLDERS)),
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_tokens_only_grow_and_one_holder_writes_per_token(
    db: Database, steps: list[tuple[str, object]]
) -> None:
    name = f"prop-{uuid.uuid4().hex[:12]}"  # a lease of its own per example
    now = T0
    granted: dict[str, int] = {}  # holder -> the last token it was granted
    highest = 0
    writers: dict[int, set[str]] = {}  # token -> holders whose fenced write succeeded
    for kind, arg in steps:
        if kind == "advance":
            assert isinstance(arg, float)
            now += timedelta(seconds=arg)
        elif kind == "acquire":
            holder = str(arg)
            got = token(db, holder, now, name)
            if got is not None:
                assert got >= highest  # never goes back
                if holder in granted:
                    assert got >= granted[holder]
                highest = got
                granted[holder] = got
        elif kind == "release":
            with db.write() as session:
                release_lease(session, name, str(arg), now)
        else:
            holder = str(arg)
            if holder in granted and fenced_write(db, holder, granted[holder], name):
                writers.setdefault(granted[holder], set()).add(holder)
                assert granted[holder] == highest  # only the current term writes
    assert all(len(holders) == 1 for holders in writers.values()), writers
