"""PostgreSQL LISTEN/NOTIFY as the bus, where there is PostgreSQL but no Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL

from gpuyard.services.bus.notices import ConnectedBus, Notice, encode_notice
from gpuyard.store.database import Database

#: The channel (a PostgreSQL identifier) every process notifies and listens on.
CHANNEL = "gpuyard_bus"
CONNECT_TIMEOUT_S = 2
LISTEN_POLL_S = 0.5
#: libpq's TCP settings for the bus's two connections: a peer that vanished (a network
#: that drops packets, a host gone) fails them within seconds instead of the kernel's
#: quarter of an hour, so a LISTEN that hears nothing any more is left and made again, and
#: a NOTIFY on a request's thread (``publish_now``) does not hang. A server that hangs
#: while its host answers is not caught here (nor would the request's own queries be).
TCP_SETTINGS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 2000,  # ms: data left unacknowledged that long fails the socket
}


def libpq_conninfo(url: URL) -> str:
    """The libpq form of an SQLAlchemy PostgreSQL URL (any driver)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus(ConnectedBus):
    """The bus over LISTEN/NOTIFY: a connection of its own that listens (autocommit).
    A commit's ``change`` notices are NOTIFYs in the writer's own transaction
    (``Database.notify_in_transaction``): PostgreSQL delivers them at its commit and
    never for a rollback, whether or not this bus was started in the writing process.
    Other notices (wake-ups, revocations: no transaction of their own) go through a
    second connection, after the commit they follow."""

    transport = "postgres"

    def __init__(self, sender: str, db: Database) -> None:
        super().__init__(sender)
        url = db.engine.url
        db.notify_in_transaction(self._change_notifies)
        self._conninfo = make_conninfo(
            libpq_conninfo(url), connect_timeout=CONNECT_TIMEOUT_S, **TCP_SETTINGS
        )
        self._sender: psycopg.Connection[tuple[object, ...]] | None = None
        self._sender_lock = threading.Lock()

    def _change_notifies(self, tables: frozenset[str]) -> list[tuple[str, str]]:
        return [(CHANNEL, encode_notice(Notice("change", t), self.sender)) for t in sorted(tables)]

    def _queue(self, notice: Notice) -> None:
        if notice.kind != "change":  # changes went with their commit
            super()._queue(notice)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self._conninfo, autocommit=True)

    def _send(self, notices: Iterable[Notice]) -> None:
        with self._sender_lock:
            try:
                if self._sender is None or self._sender.closed:
                    self._sender = self._connect()
                with self._sender.cursor() as cursor:
                    for notice in notices:
                        payload = encode_notice(notice, self.sender)
                        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except Exception:
                self._drop_sender()
                raise

    def _drop_sender(self) -> None:
        if self._sender is not None:
            try:
                self._sender.close()
            finally:
                self._sender = None

    def _listen(
        self,
        ready: Callable[[], None],
        received: Callable[[str | bytes], None],
        stop: threading.Event,
    ) -> None:
        with self._connect() as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            ready()
            while not stop.is_set():
                for notify in connection.notifies(timeout=LISTEN_POLL_S):
                    received(notify.payload)
                    if stop.is_set():
                        break

    def _close(self) -> None:
        with self._sender_lock:
            self._drop_sender()
