"""Databases migrated once per test run and copied for each test.

Running the Alembic migrations from empty costs ~50 ms on SQLite and ~100 ms on
PostgreSQL; a copy of a migrated database costs a few ms. Tests that start from a copy
still go through `upgrade_to_head` (it finds the schema at head and does nothing); the
migrations themselves run from empty in tests/store/test_migrations.py, and
test_a_template_copy_has_the_schema_of_a_fresh_migration there checks a copy's schema is
that of a fresh migration.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from gpuyard.settings import Settings
from gpuyard.store.database import Database
from gpuyard.store.migrate import upgrade_to_head


def migrate_then_close(url: str) -> None:
    """Bring the database at ``url`` to head and close every connection to it."""
    database = Database(url)
    try:
        upgrade_to_head(database)
    finally:
        database.dispose()


@cache
def migrated_sqlite_file() -> Path:
    """A SQLite file migrated to head, made once per process (removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="gpuyard-template-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "gpuyard.db"
    migrate_then_close(f"sqlite:///{path}")
    # Closing the last connection checkpoints the write-ahead log into the file and
    # deletes it: the one file is the whole database.
    assert not path.with_name(f"{path.name}-wal").exists(), "WAL left beside the template"
    return path


def seed_embedded_database(settings: Settings) -> None:
    """Start a context's embedded SQLite database (none yet) as a copy of the migrated
    template; a database URL or an existing file is left alone."""
    if settings.database_url is not None or settings.sqlite_path.exists():
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite_file(), settings.sqlite_path)
