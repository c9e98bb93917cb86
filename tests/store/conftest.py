"""Store tests run on SQLite and on a real PostgreSQL (dstack's matrix)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuyard.store.database import Database
from gpuyard.store.migrate import upgrade_to_head


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def bare_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database (no schema yet), disposed of afterwards."""
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("empty_postgres_url"))
    )
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def db(bare_db: Database) -> Database:
    """A database migrated to the newest revision."""
    upgrade_to_head(bare_db)
    return bare_db
