"""Write a batch together; on a conflict, one savepoint per item (docs/concurrency.md #10).

A batch is first written in one savepoint, ideally with one statement per table
(``executemany``: psycopg pipelines each into one round trip, where a savepoint per item
costs about ten). If it fails in a way the caller names a conflict (a stale row, one
item's bad data), that savepoint rolls back, nothing of it stays, and the items are
written again one per savepoint: a bad item rolls back alone while the others commit
with the caller's transaction. Any other error propagates and fails the transaction.

Callers compose the two steps: the scheduler's apply writes some admissions one by one
whatever happens (docker servers need host ports per row); the lifecycle re-reads the
versions and tries the batch together once more before it goes one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

from gpuyard.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def write_together(
    session: Session,
    write_all: Callable[[], object],
    is_conflict: Callable[[Exception], bool],
    what: str,
) -> bool:
    """Run ``write_all`` in one savepoint: True if it went through; False (the savepoint
    rolled back, nothing written) if it raised an error ``is_conflict`` accepts (logged
    as ``<what>_batch_conflict``); any other error propagates."""
    try:
        with session.begin_nested():
            write_all()
    except Exception as exc:
        if not is_conflict(exc):
            raise
        log.debug(f"{what}_batch_conflict", error=str(exc)[:200])
        return False
    return True


def write_each(
    session: Session,
    items: Sequence[T],
    write_one: Callable[[T], R],
    on_error: Callable[[T, Exception], None],
) -> list[R]:
    """Write each item in a savepoint of its own; the results of those that went
    through. An item that raises is rolled back alone and handed to ``on_error``, which
    records it (and the others go on) or raises (and the transaction fails)."""
    results: list[R] = []
    for item in items:
        try:
            with session.begin_nested():
                result = write_one(item)
        except Exception as exc:  # rolled back alone, whatever it was: on_error decides
            on_error(item, exc)
            continue
        results.append(result)
    return results


def write_batch_or_each(
    session: Session,
    items: Sequence[T],
    write_all: Callable[[Sequence[T]], object],
    write_one: Callable[[T], R],
    is_conflict: Callable[[Exception], bool],
    on_error: Callable[[T, Exception], None],
    what: str,
) -> list[R] | None:
    """:func:`write_together` for all ``items``; if that conflicts, :func:`write_each`.
    None when the batch went through together, else the results of the items written
    one by one."""
    if len(items) > 1 and write_together(session, lambda: write_all(items), is_conflict, what):
        return None
    return write_each(session, items, write_one, on_error)
