"""Migrations: upgrade, `alembic check` (models and migrations agree), downgrade; on
SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gpuyard.store.database import Database
from gpuyard.store.migrate import alembic_config, upgrade_to_head
from gpuyard.store.tables import Base


def test_upgrade_check_downgrade(bare_db: Database) -> None:
    db = bare_db
    upgrade_to_head(db)
    upgrade_to_head(db)  # a second start is a no-op
    with db.engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diffs == [], f"models and migrations disagree: {diffs}"
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())

    config = alembic_config(db.url)
    with db.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        conn.commit()
    assert inspect(db.engine).get_table_names() == ["alembic_version"]
