"""Apply Alembic migrations at start-up, once, even when several processes start together."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from gpuyard.store.database import Database

_HERE = Path(__file__).resolve().parent
# Any fixed 64-bit number; only gpuyard processes take this PostgreSQL advisory lock.
_MIGRATION_LOCK_ID = 0x67707579617264


def alembic_config(url: str) -> Config:
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(db: Database) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    config = alembic_config(db.url)
    with db.writer.connect() as conn:
        if db.is_sqlite:
            # The first statement opens a BEGIN IMMEDIATE transaction: concurrent starters
            # on one SQLite file wait here, then find the schema already at head.
            conn.exec_driver_sql("SELECT 1")
        else:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
            conn.commit()
        try:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        finally:
            if not db.is_sqlite:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})
                conn.commit()
