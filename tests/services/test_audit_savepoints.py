"""Audit log lines follow the transaction, not its savepoints: a released savepoint is not
a commit (its lines wait for the outer commit), and a rolled-back savepoint drops only the
lines written inside it. (SQLAlchemy fires after_commit / after_rollback for savepoints
too.) The hash chain itself survives savepoints; tests/store/test_audit_chain.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gpuyard.services.identity import audit
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit, verify_audit_log
from gpuyard.store.database import Database
from gpuyard.store.migrate import upgrade_to_head


class _Lines:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def info(self, _event: str, **fields: Any) -> None:
        self.ids.append(fields["audit_id"])


@pytest.fixture
def logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, _Lines]]:
    """A migrated database, and the audit log lines it emits."""
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade_to_head(db)
    lines = _Lines()
    monkeypatch.setattr(audit, "audit_log", lines)
    yield db, lines
    db.dispose()


def test_a_rolled_back_savepoint_keeps_the_log_lines_of_committed_events(
    logged: tuple[Database, _Lines],
) -> None:
    db, lines = logged
    now = datetime.now(UTC)
    with db.write() as session:
        kept = record_audit(session, SYSTEM_ACTOR, "x.kept", "x", None, now)
        try:
            with session.begin_nested():
                record_audit(session, SYSTEM_ACTOR, "x.undone", "x", None, now)
                raise RuntimeError
        except RuntimeError:
            pass
    assert verify_audit_log(db).intact  # the chain is fine
    assert lines.ids == [kept.id]  # logged; the undone one not


def test_a_released_savepoint_logs_nothing_until_the_outer_commit(
    logged: tuple[Database, _Lines],
) -> None:
    db, lines = logged
    now = datetime.now(UTC)
    with db.write() as session:
        with session.begin_nested():
            inner = record_audit(session, SYSTEM_ACTOR, "x.inner", "x", None, now)
        assert lines.ids == []  # released, not committed
        outer = record_audit(session, SYSTEM_ACTOR, "x.outer", "x", None, now)
    assert lines.ids == [inner.id, outer.id]

    def rolled_back() -> None:
        with db.write() as session:
            with session.begin_nested():
                record_audit(session, SYSTEM_ACTOR, "x.lost", "x", None, now)
            raise RuntimeError  # the outer transaction rolls back: nothing of it is logged

    with pytest.raises(RuntimeError):
        rolled_back()
    assert lines.ids == [inner.id, outer.id]
    assert verify_audit_log(db).intact
