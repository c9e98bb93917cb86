"""The decayed team usage rows (migration 0023, docs/concurrency.md #38): each accrual is
a compare-and-set on the row's version, so two processes accruing from the same read add
the interval once; a first insert racing another, or for a deleted team, is skipped
without spoiling the caller's transaction."""

from __future__ import annotations

from sqlalchemy import delete

from gpuyard.store import team_usage
from gpuyard.store.database import Database
from gpuyard.store.identity_tables import TeamRow


def _team(db: Database, name: str) -> str:
    with db.write() as session:
        row = TeamRow(name=name)
        session.add(row)
        session.flush()
        return row.id


def test_the_second_accrual_from_the_same_read_is_refused(db: Database) -> None:
    team = _team(db, "t")
    with db.write() as session:
        assert team_usage.put_decayed_usage(session, team, (1.0, 2.0, 3.0, 4.0), 100.0, None)
    with db.read() as session:
        seen = team_usage.decayed_usage(session)[team]
    assert seen.history == (1.0, 2.0, 3.0, 4.0)
    assert (seen.accrued_at, seen.version) == (100.0, 1)

    with db.write() as session:  # process A
        assert team_usage.put_decayed_usage(session, team, (2.0, 2.0, 3.0, 4.0), 110.0, seen)
    with db.write() as session:  # process B, from the same read: already counted
        assert not team_usage.put_decayed_usage(session, team, (9.0, 9.0, 9.0, 9.0), 110.0, seen)
    with db.read() as session:
        now = team_usage.decayed_usage(session)[team]
    assert now.history == (2.0, 2.0, 3.0, 4.0)
    assert (now.accrued_at, now.version) == (110.0, 2)


def test_a_racing_first_insert_and_a_deleted_team_are_skipped(db: Database) -> None:
    team = _team(db, "t")
    gone = _team(db, "gone")
    with db.write() as session:
        session.execute(delete(TeamRow).where(TeamRow.id == gone))
    with db.write() as session:
        assert team_usage.put_decayed_usage(session, team, (1.0, 0, 0, 0), 100.0, None)
        # Another process's first insert for the same team: loses on the key, alone.
        assert not team_usage.put_decayed_usage(session, team, (5.0, 0, 0, 0), 100.0, None)
        # A team deleted meanwhile: loses on the foreign key, alone.
        assert not team_usage.put_decayed_usage(session, gone, (5.0, 0, 0, 0), 100.0, None)
    with db.read() as session:
        stored = team_usage.decayed_usage(session)
    assert set(stored) == {team}
    assert stored[team].history == (1.0, 0, 0, 0)


def test_a_deleted_team_takes_its_row_with_it(db: Database) -> None:
    team = _team(db, "t")
    with db.write() as session:
        assert team_usage.put_decayed_usage(session, team, (1.0, 0, 0, 0), 100.0, None)
    with db.write() as session:
        session.execute(delete(TeamRow).where(TeamRow.id == team))
    with db.read() as session:
        assert team_usage.decayed_usage(session) == {}
