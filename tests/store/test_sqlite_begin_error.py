"""BEGIN IMMEDIATE is polled from an engine event, outside SQLAlchemy's wrapping of driver
errors; a lock held past the deadline must still surface as SQLAlchemy's
OperationalError, the type the rest of the code (and the group commit) handles."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import exc, text

from gpuyard.store import database
from gpuyard.store.database import Database


def test_a_lock_timeout_is_a_sqlalchemy_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite"
    db = Database(f"sqlite:///{path}")
    with db.write() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    monkeypatch.setattr(database._begin_immediate, "__defaults__", (0.2,))  # short deadline
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(exc.OperationalError), db.write() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        other.execute("ROLLBACK")
        other.close()
        db.dispose()
