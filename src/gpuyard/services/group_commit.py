"""Group commit: concurrent writes of the same kind share one transaction.

Under load many API threads submit at once. On SQLite they would take the database's one
write lock in turn, each paying its own BEGIN IMMEDIATE, audit-chain head read and COMMIT
(on PostgreSQL, the audit chain's advisory lock serialises them the same way). Here each
thread queues its item and waits for the batch lock; whoever holds it is the leader and
writes every item queued so far in one transaction, then hands each waiting thread its
own outcome. Nobody is answered before the commit that holds their item, so an
acknowledged write is as durable as one committed alone.

A batch function checks each item and writes the ones that pass; an item that fails a
check (an expected :class:`~gpuyard.domain.errors.GpuyardError`) must have written nothing
and gets its error back while the others go on. A database error (lock timeout, lost
connection) fails the whole batch. Anything else raised rolls back the batch, and its
items are then retried one transaction each, so one bad item cannot fail the requests
that happened to share its batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gpuyard.domain.errors import GpuyardError
from gpuyard.log import get_logger
from gpuyard.store.database import Database

log = get_logger(__name__)
#: Errors of the database itself rather than of an item in the batch.
_DATABASE_TROUBLE = (OperationalError, InterfaceError)

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Writes ``items`` in ``session``'s transaction; one outcome per item, in order.
BatchWriter = Callable[[Session, Sequence[Item]], list[Result | GpuyardError]]


@dataclass(eq=False)
class _Ticket(Generic[Item, Result]):
    item: Item
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None
    #: Set for a submission awaited on an event loop: its outcome is delivered there.
    future: asyncio.Future[Result] | None = None

    def settle(self, outcome: Result | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self.error = outcome
        else:
            self.result = outcome
        self.done = True
        if self.future is not None:
            self.future.get_loop().call_soon_threadsafe(_resolve, self.future, outcome)


def _resolve(future: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if future.cancelled():  # the request went away; the write itself stands
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@dataclass(eq=False)
class GroupCommit(Generic[Item, Result]):
    """Writes items of one kind through ``write_batch``, many per transaction."""

    db: Database
    write_batch: BatchWriter[Item, Result]
    #: Called once after each committed batch (e.g. wake the scheduler).
    after_commit: Callable[[], None] = lambda: None
    max_batch: int = 256
    _queue: list[_Ticket[Item, Result]] = field(default_factory=list)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Whose turn it is to write: one leader at a time; the others wait for it to finish
    #: (their item may be in its batch) and then either return or lead themselves.
    _turn: threading.Condition = field(default_factory=threading.Condition)
    _leading: bool = False
    #: Writes what :meth:`submit_async` queues; started on demand, leaves when idle.
    _writer: threading.Thread | None = None
    _work: threading.Condition = field(default_factory=threading.Condition)
    writer_idle_s: float = 60.0

    @property
    def queued(self) -> int:
        """Items waiting for a leader."""
        return len(self._queue)

    def submit(self, item: Item) -> Result:
        """Write ``item`` (with whatever else is queued) and return its outcome once
        committed; raises the item's own error.

        Never call it inside an open write transaction of the same database: the leader
        of the moment would wait for that transaction's lock while this thread waits for
        the leader."""
        if self.db.writing():
            raise RuntimeError("GroupCommit.submit inside an open write transaction")
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._queue_lock:
            self._queue.append(ticket)
        self._lead_until(ticket)
        if ticket.error is not None:
            raise ticket.error
        return cast(Result, ticket.result)

    async def submit_async(self, item: Item) -> Result:
        """:meth:`submit` for an event loop: the caller awaits while this group commit's
        writer thread writes the batch, so no worker thread is held per request."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        ticket: _Ticket[Item, Result] = _Ticket(item, future=future)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._work:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_queued, name="group-commit", daemon=True
                )
                self._writer.start()
            self._work.notify()
        return await future

    def _write_queued(self) -> None:
        while True:
            with self._work:
                while not self._queue:
                    if not self._work.wait(self.writer_idle_s) and not self._queue:
                        self._writer = None  # a later submit_async starts a new one
                        return
            self._lead_until(None)

    def _lead_until(self, ticket: _Ticket[Item, Result] | None) -> None:
        """Wait for the turn, then write batches until ``ticket`` is settled (None: one
        batch of whatever is queued). Returns at once if another leader settled it."""
        with self._turn:
            while self._leading and not (ticket is not None and ticket.done):
                self._turn.wait()
            if ticket is not None and ticket.done:
                return
            self._leading = True
        try:
            if ticket is None:
                self._lead()
            while ticket is not None and not ticket.done:
                self._lead()
        finally:
            with self._turn:
                self._leading = False
                self._turn.notify_all()

    def _lead(self) -> None:
        """Write one batch off the queue. Every ticket taken is settled, whatever happens;
        the after-commit hook runs once if anything committed, and cannot fail a ticket."""
        with self._queue_lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        if not batch:
            return
        committed = False
        try:
            committed = self._write_settling(batch)
        finally:
            for ticket in batch:
                if not ticket.done:
                    ticket.settle(RuntimeError("the group commit stopped before this item"))
            if committed:
                try:
                    self.after_commit()
                except Exception:  # a wake-up hint; the writes stand
                    log.exception("group_commit_after_commit_failed")

    def _write_settling(self, batch: list[_Ticket[Item, Result]]) -> bool:
        """Write ``batch`` and settle its tickets; True if anything was committed."""
        try:
            outcomes = self._write(batch)
        except _DATABASE_TROUBLE as exc:
            # Not any one item's fault (a lock timeout, a lost connection): writing the
            # items one by one would only meet it again, each in turn.
            for ticket in batch:
                ticket.settle(exc)
            return False
        except Exception as exc:
            if len(batch) == 1:
                batch[0].settle(exc)
                return False
            committed = False
            for ticket in batch:  # one bad item must not fail the others: each alone
                outcome: Result | BaseException
                try:
                    outcome = self._write([ticket])[0]
                    committed = True
                except Exception as alone:
                    outcome = alone
                ticket.settle(outcome)
            return committed
        for ticket, outcome in zip(batch, outcomes, strict=True):
            ticket.settle(outcome)
        return True

    def _write(self, batch: list[_Ticket[Item, Result]]) -> list[Result | GpuyardError]:
        with self.db.write() as session:
            outcomes = self.write_batch(session, [t.item for t in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError("a batch writer must return one outcome per item")
        return outcomes
