"""PostgresServer really starts, serves SQLAlchemy, creates databases and stops cleanly."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from . import postgres
from .local_server import ServerUnavailable, port_is_open, start_or_skip
from .postgres import PostgresServer, PostgresUnavailable, find_bindir


def scalar(url: str, query: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.integration
@pytest.mark.postgres
def test_server_serves_two_databases_then_stops_cleanly() -> None:
    with start_or_skip(PostgresServer()) as pg:
        port, directory = pg.port, pg.directory
        assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/gpuyard_test"
        assert scalar(pg.url, "select 1") == 1
        assert scalar(pg.url, "select current_setting('fsync')") == "off"
        assert scalar(pg.url, "select current_setting('listen_addresses')") == "127.0.0.1"

        second = pg.create_database("second_db")
        assert second.endswith(f":{port}/second_db")
        assert scalar(second, "select current_database()") == "second_db"
        assert port_is_open(port)

    assert not pg.running
    assert not port_is_open(port)
    assert not directory.exists()
    pg.stop()  # stopping twice is harmless


def test_session_fixture_and_per_test_database(
    postgres_server: PostgresServer, empty_postgres_url: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("postgres") is not None
    assert empty_postgres_url.startswith(
        f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/"
    )
    tables = "select count(*) from pg_tables where schemaname = 'public'"
    assert scalar(empty_postgres_url, tables) == 0


def test_per_test_database_is_a_migrated_copy(
    postgres_server: PostgresServer, postgres_url: str, postgres_template: str
) -> None:
    assert postgres_url.startswith(
        f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/test_"
    )
    assert scalar(postgres_url, "select count(*) from alembic_version") == 1
    # Nothing holds the template open, or the next copy would be refused.
    connected = f"select count(*) from pg_stat_activity where datname = '{postgres_template}'"
    assert scalar(postgres_server.url, connected) == 0


def test_missing_binaries_raise_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "DEBIAN_ROOT", tmp_path)
    with pytest.raises(PostgresUnavailable, match="install the Debian package 'postgresql'"):
        find_bindir()
    assert issubclass(PostgresUnavailable, ServerUnavailable)
