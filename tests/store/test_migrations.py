"""Migrations: upgrade, `alembic check` (models and migrations agree), downgrade; on
SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from factories.app import admin_caller, make_context, make_settings
from factories.templates import seed_embedded_database
from sqlalchemy import inspect, select, text

import gpuyard.store
from gpuyard.domain.pools import POOL_OWNER_ID
from gpuyard.services.pools.specs import PoolDefinition, create_pool
from gpuyard.services.pools.tending import tend_pools
from gpuyard.store.database import Database
from gpuyard.store.fleet_tables import ClusterRow
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


def test_downgrade_past_warm_pools_with_warm_containers(bare_db: Database, tmp_path: Path) -> None:
    """0013's downgrade with a pool's warm containers (owned by the pools' owner) in the
    database: they go, then their owner (the other order breaks the foreign key)."""
    ctx = make_context(make_settings(tmp_path / "data", bare_db.url))
    with ctx.db.read() as session:
        cluster_id = session.scalar(select(ClusterRow.id))
    definition = PoolDefinition(
        name="warm",
        image_type="nginx",
        image="nginx:1.27",
        server_id=None,
        cluster_id=cluster_id,
        target_size=2,
        port_min=30000,
        port_max=30099,
        container_port=None,
        cpu=0.5,
        ram_gb=0.5,
        storage_gb=0,
    )
    create_pool(ctx, admin_caller(ctx), definition)
    tend_pools(ctx)
    ctx.db.dispose()
    config = alembic_config(bare_db.url)
    with bare_db.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM workloads WHERE priority = 0")) == 2
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
        conn.commit()
    with bare_db.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM workloads WHERE priority = 0")) == 0
        owner = conn.scalar(
            text("SELECT count(*) FROM users WHERE id = :id"), {"id": POOL_OWNER_ID}
        )
        assert owner == 0
    assert "pools" not in inspect(bare_db.engine).get_table_names()


def test_0013_refuses_a_check_rewrite_that_changes_nothing(tmp_path: Path) -> None:
    """SQLite's CHECK edit replaces text in the stored CREATE TABLE: text that is not
    there is an error, not a migration that passes with the old CHECK."""
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade_to_head(db)
    versions = Path(gpuyard.store.__file__).parent / "migrations" / "versions"
    path = next(versions.glob("*/*_0013_warm_pools.py"))
    spec = importlib.util.spec_from_file_location("migration_0013", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with db.engine.connect() as conn, Operations.context(MigrationContext.configure(conn)):
        before = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'workloads'"))
        with pytest.raises(RuntimeError, match="not rewritten"):
            module._rewrite_sqlite_checks("priority BETWEEN 7 AND 9)", "priority > 0)")
        after = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'workloads'"))
    assert after == before
    db.dispose()


def _schema(db: Database) -> dict[str, Any]:
    """Everything reflection sees of a database's tables, in a comparable form."""
    inspector = inspect(db.engine)
    schema: dict[str, Any] = {}
    for table in inspector.get_table_names():
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": sorted(map(repr, inspector.get_foreign_keys(table))),
            "indexes": sorted(map(repr, inspector.get_indexes(table))),
            "unique": sorted(map(repr, inspector.get_unique_constraints(table))),
            "checks": sorted(map(repr, inspector.get_check_constraints(table))),
        }
    with db.engine.connect() as conn:
        schema["alembic_version rows"] = conn.scalars(
            text("SELECT version_num FROM alembic_version")
        ).all()
    return schema


def test_a_template_copy_has_the_schema_of_a_fresh_migration(
    bare_db: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Tests start from a copy of a database migrated once (factories/templates.py,
    the `postgres_url` fixture): the copy must be what migrating from empty makes."""
    upgrade_to_head(bare_db)
    fresh = _schema(bare_db)
    if bare_db.is_sqlite:
        settings = make_settings(tmp_path / "copy", None)
        seed_embedded_database(settings)
        copy = Database(settings.effective_database_url)
    else:
        copy = Database(str(request.getfixturevalue("postgres_url")))
    try:
        assert _schema(copy) == fresh
        assert len(fresh) > 10
        assert fresh["alembic_version rows"] == [
            ScriptDirectory.from_config(alembic_config(copy.url)).get_current_head()
        ]
        with copy.engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diffs == [], f"the copy and the models disagree: {diffs}"
    finally:
        copy.dispose()
