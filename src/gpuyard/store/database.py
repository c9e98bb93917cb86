"""Engine and session handling for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout. Write transactions start with BEGIN
IMMEDIATE so two processes never both read-then-write on a stale snapshot (the deferred
BEGIN would fail one of them late with "database is locked"); reads stay deferred.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, TextClause, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.domain.text import renderable, unstorable_paths

_BUSY_TIMEOUT_S = 30.0
#: Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE.
SQLITE_IMMEDIATE = "gpuyard_sqlite_immediate"


def dump_json_column(value: Any) -> str:
    """JSON columns hold only storable text: a value that would store a NUL or a lone
    surrogate fails its statement (and so its transaction) instead of poisoning every
    later read. The API refuses such input first; this is the guard behind it."""
    text = json.dumps(value)
    if ("\\u0000" in text or "\\ud" in text) and any(unstorable_paths(value)):
        raise ValueError("a JSON column cannot hold NUL characters or lone surrogates")
    return text


def load_json_column(text: str | bytes) -> Any:
    """A JSON column's value; text that older versions stored with a lone surrogate is
    repaired (U+FFFD), so one such row cannot fail every response that shows it.
    (psycopg hands the text over as bytes, sqlite3 as str.)"""
    value = json.loads(text)
    if isinstance(text, bytes):
        escaped = b"\\ud" in text or b"\\uD" in text
    else:
        escaped = "\\ud" in text or "\\uD" in text
    return renderable(value) if escaped else value


#: The tables whose committed changes :meth:`Database.on_commit` callbacks hear of: the
#: ones with change marks (migration 0005), which other processes act on.
WATCHED_TABLES = frozenset({"workloads", "servers"})
#: Each table whose writes move a watched table's change marks, and that table: migration
#: 0005's triggers mark a workload for its allocations and a server for its GPUs, so a
#: write of allocations alone is a change of workloads to every reader of the marks.
MARKED_BY = {
    "workloads": "workloads",
    "allocations": "workloads",
    "servers": "servers",
    "server_gpus": "servers",
}
#: The target of a write given as SQL text (``text()``, driver SQL; Core and ORM statements
#: name theirs): after comments, SQLite's ``OR <conflict>``, a schema, quotes.
_WRITE_STATEMENT = re.compile(
    r"\s*(?:(?:/\*.*?\*/|--[^\n]*\n)\s*)*"
    r"(?:(?:INSERT|REPLACE)(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)"
    r'\s+(?:"?\w+"?\s*\.\s*)?"?(\w+)',
    re.I | re.S,
)
_CHANGED = "gpuyard_changed_tables"
_CONNECTION = "gpuyard_connection"


class Database:
    """One engine plus two session factories: ``read()`` and ``write()``."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": dump_json_column,
            "json_deserializer": load_json_column,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": _BUSY_TIMEOUT_S}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        #: The same pool, but every transaction takes SQLite's write lock up front.
        self.writer: Engine = self.engine.execution_options(**{SQLITE_IMMEDIATE: True})
        # Re-entrant: a service may open a write while its caller's write is still open.
        self._writer_lock: threading.RLock | contextlib.nullcontext[None] = (
            threading.RLock() if self.is_sqlite else contextlib.nullcontext()
        )
        self._open_writes = threading.local()  # per thread: how many write() blocks are open
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.writer, expire_on_commit=False)
        self._commit_callbacks: list[Callable[[frozenset[str]], None]] = []
        #: PostgreSQL only: the (channel, payload) NOTIFYs a write sends in its own
        #: transaction for the watched tables it changed (see notify_in_transaction).
        self._notifies: Callable[[frozenset[str]], list[tuple[str, str]]] | None = None
        self._committed = threading.local()  # per thread: the watched tables just committed
        _track_changed_tables(self.engine, self._committed)
        event.listen(self._write, "after_begin", _remember_connection)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading. Closing it ends the transaction without expiring the
        rows it loaded, so callers may keep using them."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back on error.

        On SQLite, writers of this process queue on a lock first: SQLite lets one writer
        in at a time anyway, and its busy handler makes the others sleep in steps of up to
        100 ms, which under load costs far more than waiting in line. Other processes
        still meet at BEGIN IMMEDIATE and the busy timeout."""
        if self._write_depth() == 0:
            # Left by a commit outside write() on this thread (a migration): not this one's.
            self._committed.tables = None
        self._open_writes.depth = self._write_depth() + 1
        try:
            with self._writer_lock, self._write() as session, session.begin():
                yield session
                if self._notifies is not None:
                    # What the ORM still holds is written at commit, after this: write it
                    # now (commit would anyway), so that its tables are notified too.
                    session.flush()
                    self._notify(session)
        except BaseException:
            self._committed.tables = None  # nothing committed (or the commit failed)
            raise
        finally:
            self._open_writes.depth -= 1
        changed: set[str] | None = getattr(self._committed, "tables", None)
        if changed:
            self._committed.tables = None
            tables = frozenset(changed)
            for callback in self._commit_callbacks:
                callback(tables)

    def notify_in_transaction(
        self, notifies: Callable[[frozenset[str]], list[tuple[str, str]]]
    ) -> None:
        """PostgreSQL: before each ``write()`` commits changes to :data:`WATCHED_TABLES`,
        send ``pg_notify(channel, payload)`` for each pair ``notifies(tables)`` gives, in
        that transaction: delivered at its commit, never for a rollback, whichever
        process or context wrote (LISTEN/NOTIFY's bus, services/bus/postgres_bus.py)."""
        if not self.is_sqlite:
            self._notifies = notifies

    def _notify(self, session: Session) -> None:
        assert self._notifies is not None
        connection = session.info.get(_CONNECTION)
        tables = connection.info.get(_CHANGED) if connection is not None else None
        if not tables:
            return
        for channel, payload in self._notifies(frozenset(tables)):
            session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": channel, "payload": payload},
            )

    def on_commit(self, callback: Callable[[frozenset[str]], None]) -> None:
        """Call ``callback`` after each ``write()`` that committed changes to
        :data:`WATCHED_TABLES`, with those tables (in the writing thread, after the
        commit: it must not block; the bus queues a notice)."""
        self._commit_callbacks.append(callback)

    def _write_depth(self) -> int:
        return getattr(self._open_writes, "depth", 0)

    def writing(self) -> bool:
        """Whether this thread has a write transaction of this database open."""
        return self._write_depth() > 0

    def dispose(self) -> None:
        self.engine.dispose()


def _remember_connection(session: Session, _transaction: Any, connection: Any) -> None:
    session.info[_CONNECTION] = connection


def _track_changed_tables(engine: Engine, committed: threading.local) -> None:
    """Note which watched tables a transaction wrote (its statements' target tables, on
    the connection), and hand them to the committing thread at commit."""

    @event.listens_for(engine, "after_cursor_execute")
    def _after_execute(
        conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        watched = MARKED_BY.get(_written_table(statement, context) or "")
        if watched is not None:
            conn.info.setdefault(_CHANGED, set()).add(watched)

    @event.listens_for(engine, "commit")
    def _on_commit(conn: Any) -> None:
        tables = conn.info.pop(_CHANGED, None)
        if tables:
            committed.tables = tables

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        conn.info.pop(_CHANGED, None)


def _written_table(statement: str, context: Any) -> str | None:
    """The table a statement writes (lower case), or None for a read. A Core or ORM
    statement (an ORM flush, ``executemany``, ``RETURNING``, a CTE before it) says which
    table it writes; only SQL text is parsed."""
    compiled = getattr(context, "compiled", None)
    if compiled is not None and not isinstance(compiled.statement, TextClause):
        if not (context.isinsert or context.isupdate or context.isdelete):
            return None  # the hot path: a compiled SELECT costs three attribute reads
        name = getattr(getattr(compiled.statement, "table", None), "name", None)
        return name.lower() if isinstance(name, str) else None
    found = _WRITE_STATEMENT.match(statement)
    return found.group(1).lower() if found is not None else None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(SQLITE_IMMEDIATE, False):
            _begin_immediate(conn.connection.dbapi_connection)
        else:
            conn.exec_driver_sql("BEGIN")


def _begin_immediate(dbapi_conn: Any, timeout_s: float = _BUSY_TIMEOUT_S) -> None:
    """BEGIN IMMEDIATE, waiting for another process's writer by polling every
    millisecond or so rather than in SQLite's busy-handler steps.

    SQLite's default busy handler sleeps 1, 2, 5, 10, ... up to 100 ms between tries, so a
    process waiting for another's short write transaction typically oversleeps it by tens
    of milliseconds while the lock sits free; with several ``gpuyard serve`` processes on
    one file that idle time dominated. Here the busy timeout is off just for the BEGIN,
    which is retried with short sleeps until ``timeout_s``."""
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + timeout_s
        pause = 0.0005
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                # Raised from an engine event, outside SQLAlchemy's wrapping of driver
                # errors: wrap it as SQLAlchemy would have, so callers see one error type.
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                if time.monotonic() >= deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(pause)
            pause = min(pause * 1.5, 0.004)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")


#: PostgreSQL's deadlock_detected and serialization_failure: the statement lost a race
#: for row locks and changed nothing; it is safe to roll back (a savepoint) and go on.
_LOST_LOCK_RACE = frozenset({"40P01", "40001"})


def lost_lock_race(exc: DBAPIError) -> bool:
    """Whether ``exc`` is PostgreSQL refusing a statement over a lock race (a deadlock or
    a serialization failure) rather than a real error."""
    return getattr(exc.orig, "sqlstate", None) in _LOST_LOCK_RACE


def row_unreadable(exc: DBAPIError) -> bool:
    """Whether ``exc`` is SQLite failing to hand over a row's text (bytes that are not
    UTF-8, written by something other than gpuyard): the row's fault, not the database's."""
    return isinstance(exc.orig, sqlite3.OperationalError) and "decode" in str(exc.orig)
