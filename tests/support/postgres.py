"""A throwaway PostgreSQL server for tests, from the machine's binaries, on 127.0.0.1.

initdb and postgres refuse to run as root, so as root every server command runs through
`runuser -u postgres` on a temp dir owned by that user. Durability is off (fsync,
synchronous_commit, full_page_writes): the cluster is deleted at stop anyway.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from .local_server import HOST, LocalServer, ServerError, ServerUnavailable, log_tail

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
DEBIAN_ROOT = Path("/usr/lib/postgresql")  # one <version>/bin per installed major version
OS_USER = "postgres"  # the OS account that runs the server when we are root
DB_USER = "postgres"  # the database superuser initdb creates
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


class PostgresUnavailable(ServerUnavailable):
    """No usable PostgreSQL server binaries (or no `postgres` user to run them as root)."""


def find_bindir() -> Path:
    """The directory with initdb, pg_ctl and postgres: pg_config's, else the newest
    /usr/lib/postgresql/*/bin, else the one on PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], check=False, capture_output=True, text=True
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    candidates += sorted(DEBIAN_ROOT.glob("*/bin"), key=_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in SERVER_BINARIES):
            return bindir
    looked = ", ".join(str(c) for c in candidates) or "pg_config, /usr/lib/postgresql/*/bin, PATH"
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) not found "
        f"(looked in: {looked}); install the Debian package 'postgresql'"
    )


def _version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name))


class PostgresServer(LocalServer):
    """PostgreSQL in a temp dir; `url` is a SQLAlchemy URL of its default database.

    with PostgresServer() as pg:
        engine = sqlalchemy.create_engine(pg.url)
        other_url = pg.create_database("worker_2")
    """

    kind = "postgres"

    def __init__(self, database: str = "gpuyard_test") -> None:
        super().__init__()
        self.database = database
        self._bindir: Path | None = None
        self._as_postgres: list[str] = []  # command prefix that runs as the postgres OS user

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of one database on this server."""
        return f"postgresql+psycopg://{DB_USER}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create an empty database (e.g. one per test or per worker), or a copy of the
        database ``template`` (which nothing may be connected to), and return its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._execute(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connections a test left open to it."""
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def _execute(self, statement: sql.Composed) -> None:
        with psycopg.connect(
            host=HOST, port=self.port, user=DB_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(statement)

    @property
    def _data(self) -> Path:
        return self.directory / "data"

    @property
    def _log(self) -> Path:
        return self.directory / "postgres.log"

    def check_available(self) -> None:
        self._bindir = find_bindir()
        if os.geteuid() != 0:
            return
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root, PostgreSQL needs an OS user {OS_USER!r} to run as "
                "(the Debian 'postgresql' package creates it)"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable("running as root, 'runuser' is needed to start PostgreSQL")
        self._as_postgres = [runuser, "-u", OS_USER, "--"]

    def _prepare(self, directory: Path) -> None:
        if self._as_postgres:
            user = pwd.getpwnam(OS_USER)
            os.chown(directory, user.pw_uid, user.pw_gid)
        self._run(
            "initdb", "-D", str(self._data), "-A", "trust", "-U", DB_USER,
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def _emergency_commands(self) -> list[list[str]]:
        return [self._command("pg_ctl", "stop", "-D", str(self._data), "-m", "immediate")]

    def _launch(self, port: int) -> None:
        self._log.unlink(missing_ok=True)  # a port clash is detected from this attempt's log
        options = ["-k", str(self.directory), "-p", str(port), "-h", HOST]
        for name, value in SERVER_SETTINGS.items():
            options += ["-c", f"{name}={value}"]
        try:
            self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self._data),
                "-l", str(self._log), "-o", shlex.join(options),
            )  # fmt: skip
        except ServerError as error:
            log = log_tail(self._log)
            raise ServerError(
                f"{error}\n--- {self._log} ---\n{log}",
                port_in_use="Address already in use" in log,
            ) from None

    def _after_start(self) -> None:
        self.create_database(self.database)

    def _shutdown(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-D", str(self._data), "-m", "immediate")

    def _command(self, binary: str, *args: str) -> list[str]:
        assert self._bindir is not None
        return [*self._as_postgres, str(self._bindir / binary), *args]

    def _run(self, binary: str, *args: str) -> None:
        command = self._command(binary, *args)
        result = subprocess.run(
            command,
            check=False,
            cwd=self.directory,  # the postgres user may not be able to enter our cwd
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ServerError(f"{shlex.join(command)} exited {result.returncode}:\n{output}")
