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
and gets its error back while the others go on. Anything else raised rolls back the
batch, and its items are then retried one transaction each, so one bad item cannot fail
the requests that happened to share its batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from sqlalchemy.orm import Session

from gpuyard.domain.errors import GpuyardError
from gpuyard.store.database import Database

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
    _leader: threading.Lock = field(default_factory=threading.Lock)
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
        committed; raises the item's own error."""
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._leader:
            # A previous leader may have written it while this thread waited for the lock.
            while not ticket.done:
                self._lead()
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
            with self._leader:
                if self._queue:  # a sync leader may have taken it meanwhile
                    self._lead()

    def _lead(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        try:
            outcomes = self._write(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].settle(exc)
                return
            for ticket in batch:  # one bad item must not fail the others: each alone
                outcome: Result | BaseException
                try:
                    outcome = self._write([ticket])[0]
                except Exception as alone:
                    outcome = alone
                ticket.settle(outcome)
                self.after_commit()
            return
        for ticket, outcome in zip(batch, outcomes, strict=True):
            ticket.settle(outcome)
        self.after_commit()

    def _write(self, batch: list[_Ticket[Item, Result]]) -> list[Result | GpuyardError]:
        with self.db.write() as session:
            outcomes = self.write_batch(session, [t.item for t in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError("a batch writer must return one outcome per item")
        return outcomes
