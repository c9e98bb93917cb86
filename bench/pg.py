"""A throwaway PostgreSQL for the PostgreSQL rows, reusing the test suite's server harness.

``tests/support/postgres.py`` starts a real PostgreSQL from the machine's binaries (as the
``postgres`` user when run as root) in a temp dir, on 127.0.0.1 only, with an exit guard that
tears it down if the bench dies. Where the binaries are missing, the PostgreSQL rows are
skipped with the reason instead.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

TESTS = Path(__file__).resolve().parent.parent / "tests"


class PgDatabases:
    """Databases on one running server: fresh ones, and copies of a prepared one."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def fresh(self, prefix: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        name: str = f"{prefix}_{uuid.uuid4().hex[:8]}"
        url: str = self._server.create_database(name)
        return url

    def clone(self, url: str, prefix: str) -> str:
        """A copy of the database at ``url`` (CREATE DATABASE ... TEMPLATE); nobody may be
        connected to it."""
        source = url.rsplit("/", 1)[1]
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            host="127.0.0.1", port=self._server.port, user="postgres", dbname="postgres",
            autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(source)
                )
            )
        return self._server.url_for(name)  # type: ignore[no-any-return]


@contextmanager
def postgres() -> Iterator[tuple[PgDatabases | None, str]]:
    """Yield (databases, "") with a running server, or (None, why not) without one."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    try:
        from support.local_server import ServerUnavailable  # type: ignore[import-not-found]
        from support.postgres import PostgresServer  # type: ignore[import-not-found]
    except ImportError as exc:  # pytest (a dev dependency) is needed by the harness
        yield None, f"PostgreSQL harness not importable: {exc}"
        return
    server = PostgresServer(database="gpuyard_bench")
    try:
        server.start()
    except ServerUnavailable as exc:
        yield None, str(exc)
        return
    try:
        yield PgDatabases(server), ""
    finally:
        server.stop()
