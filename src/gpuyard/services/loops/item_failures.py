"""One bad item never stops a loop.

Every background loop works through items: workloads (lifecycle, scheduler, starter),
servers (health, reconcile) and containers to tear down (cleanup). An item whose own data
makes its processing fail (a duration no datetime can reach, text the database refuses, a
row that cannot be read, an agent answering garbage) must not fail the tick of every
other item, tick after tick:

- it is logged once per process (:func:`report_item_failure`), not on every tick;
- a workload is failed with a reason (:func:`fail_workload`) built from fixed text and the
  error's type only, never from the value that failed, so the reason itself is storable;
  one that cannot be failed (its status does not allow it, or the write itself fails) is
  left where it is, and the loop skips it;
- the loop goes on with the rest.

Isolation costs nothing while no item fails: loops keep their batches and bulk reads and
fall back to item by item only when a batch fails. A failure that says nothing about the
item (the database connection, a lock race) is not blamed on it: it is retried next tick.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from typing import Any, TypeVarTuple

import httpx
from sqlalchemy import ColumnElement, Row, Select
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.orm import QueryableAttribute, Session, load_only

from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus, can_transition
from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.workloads.transitions import transition_workload
from gpuyard.store.database import row_unreadable
from gpuyard.store.workload_tables import WorkloadRow

log = get_logger(__name__)

#: Failures remembered per process, so each is logged once (the oldest are forgotten).
_REMEMBERED = 10_000
_reported: OrderedDict[tuple[str, str], None] = OrderedDict()
_reported_lock = threading.Lock()


def report_item_failure(
    loop: str, item: str, exc: BaseException, what: str, **context: str
) -> bool:
    """Log that ``item`` failed in ``loop`` (``what`` says at which step; ``context`` adds
    fields such as a server's name), the first time only: an item that keeps failing is
    not logged on every tick. ``item`` names it uniquely: a workload's id, "server <id>",
    "teardown <id>". True when logged now."""
    key = (loop, item)
    with _reported_lock:
        if key in _reported:
            return False
        _reported[key] = None
        if len(_reported) > _REMEMBERED:
            _reported.popitem(last=False)
    log.error(
        "loop_item_failed",
        loop=loop,
        item=item,
        what=what,
        error=type(exc).__name__,
        exc_info=exc,
        **context,
    )
    return True


def blames_item(exc: BaseException) -> bool:
    """Whether ``exc`` says something about the item itself (its data, a guard its write
    breaks) rather than about the database, a race or a remote system: only then is the
    item failed. Anything else is retried next tick (a healthy workload must never be
    failed because a pool timed out, a concurrent update won, or an agent answered
    nonsense)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        return isinstance(exc, DataError | IntegrityError) or row_unreadable(exc)
    if isinstance(exc, StatementError) and exc.orig is not None:
        return blames_item(exc.orig)  # a value a column's own conversion refused
    if isinstance(exc, SQLAlchemyError | OSError | json.JSONDecodeError | httpx.HTTPError):
        # A pool timeout, a stale version, a rolled-back session; the network; an
        # unreadable answer from an agent.
        return False
    return isinstance(exc, _ITEM_DATA_ERRORS)


#: What Python raises when an item's own values are out of range or of the wrong shape.
_ITEM_DATA_ERRORS = (ValueError, ArithmeticError, TypeError, LookupError)


def failure_reason(what: str, exc: BaseException) -> str:
    """A workload's reason for failing: fixed text and the error's type, nothing of the
    value that failed (it may be text the database cannot store)."""
    return f"{what} ({type(exc).__name__}); failed so that the other workloads go on"


def fail_workload(
    ctx: ServiceContext,
    workload_id: str,
    reason: str,
    *,
    loop: str,
    expect: Collection[WorkloadStatus] | None = None,
) -> bool:
    """Fail ``workload_id`` with ``reason`` in a transaction of its own, giving back what it
    holds; only if its status is in ``expect`` (when given) and may become failed. Reads
    no more of the row than its status, so a row with an unreadable column can still be
    failed. True when failed; a write that fails is logged once and skipped."""
    now = ctx.now()
    w = WorkloadRow
    try:
        with ctx.db.write() as session:
            only_status = [load_only(w.id, w.status, w.version)]
            row = session.get(w, workload_id, options=only_status, populate_existing=True)
            if row is None:
                return False
            status = WorkloadStatus(row.status)
            if (expect is not None and status not in expect) or not can_transition(
                status, WorkloadStatus.FAILED
            ):
                return False
            if status in HOLDS_RESOURCES:
                release_workload(session, row, reason="failed")
            transition_workload(
                session, row, WorkloadStatus.FAILED, reason, now, details={"loop": loop}
            )
    except Exception as exc:  # skipped: the loop goes on
        report_item_failure(loop, f"{workload_id} (failing it)", exc, "could not be failed")
        return False
    log.warning("workload_failed_by_loop", loop=loop, workload_id=workload_id, reason=reason)
    ctx.scheduler_wakeup.notify()
    return True


#: Keys per ``IN (...)`` list when rows are read again (SQLite caps bound parameters).
_CHUNK = 500
_Ts = TypeVarTuple("_Ts")


def read_isolating(
    session: Session,
    query: Select[*_Ts],
    key: QueryableAttribute[Any] | ColumnElement[Any],
) -> tuple[Sequence[Row[*_Ts]], dict[Any, Exception]]:
    """The rows of ``query``, and the keys (values of ``key``) whose rows cannot be read.

    One statement when every row reads (the only cost while nothing is wrong). When that
    fails, the keys are read alone, then their rows in halving chunks, in the query's
    order, down to the rows that fail by themselves; an error that does not blame its row
    (the connection, a transaction PostgreSQL aborted) is raised as it was."""
    try:
        return session.execute(query).all(), {}
    except Exception as exc:
        if not blames_item(exc):
            raise
    keys = list(dict.fromkeys(session.scalars(query.with_only_columns(key))))
    rows: list[Row[*_Ts]] = []
    unreadable: dict[Any, Exception] = {}

    def read(chunk: list[Any]) -> None:
        try:
            rows.extend(session.execute(query.where(key.in_(chunk))).all())
        except Exception as exc:
            if not blames_item(exc):
                raise
            if len(chunk) == 1:
                unreadable[chunk[0]] = exc
                return
            half = len(chunk) // 2
            read(chunk[:half])
            read(chunk[half:])

    for first in range(0, len(keys), _CHUNK):
        read(keys[first : first + _CHUNK])
    return rows, unreadable
