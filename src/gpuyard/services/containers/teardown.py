"""The cleanup loop: stops (with the grace period) and removes containers whose
reservation was released, through their server's runtime (the agent), retrying with
backoff until done.

Rows come from the transaction that released the reservation (stop, delete, preemption,
re-queue, a lost server), so the database never forgets a container it must clean up.

One teardown never stops the others: one that fails in a way nothing handles (a grace
period no timer can wait, an agent answering garbage) is logged once and retried with
backoff like any other failure, its error recorded as storable text; one whose row cannot
be updated is skipped alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gpuyard.domain.errors import NotFound
from gpuyard.domain.text import renderable
from gpuyard.log import get_logger
from gpuyard.runtimes.base import RuntimeFailure
from gpuyard.services.batches import write_batch_or_each
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import blames_item, read_isolating, report_item_failure
from gpuyard.services.loops.leases import LeaseFence, check_fences
from gpuyard.store import containers as container_store

log = get_logger(__name__)
_LOOP = "cleanup"
BATCH = 64
#: Retry backoff: 5 s doubling to 5 min.
_BACKOFF_S, _BACKOFF_MAX_S = 5.0, 300.0
#: The attempts counter stops here (it is only shown; the backoff is long capped by then).
_MAX_ATTEMPTS = 1_000_000


@dataclass(frozen=True)
class _Teardown:
    id: str
    handle: str
    grace_s: float
    attempts: int
    #: The cluster kind of its server (None: the server is gone).
    kind: str | None


def run_teardowns(ctx: ServiceContext, fence: LeaseFence | None = None) -> int:
    """One tick: returns how many containers are gone for good. ``fence``: the cleanup
    lease's term this tick runs under; once another process took it over, the outcomes
    are not recorded (:class:`Fenced`): the new holder's stop and remove find the
    containers gone, and it records them."""
    now = ctx.now()
    with ctx.db.read() as session:
        rows, unreadable = container_store.due_teardowns(session, now, BATCH, read_isolating)
        due = [_Teardown(r.id, r.handle, _grace(ctx, r.grace_s), r.attempts, r.kind) for r in rows]
    if unreadable:
        _put_off(ctx, unreadable, now)
    if not due:
        return 0
    # Stops wait out their grace period: run them side by side, not one after another.
    with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
        outcomes = list(pool.map(lambda item: _tear_down(ctx, item), due))
    results = list(zip(due, outcomes, strict=True))

    def record_all(batch: Sequence[tuple[_Teardown, str | None]]) -> None:
        for item, error in batch:
            _record_outcome(session, item, error, now)

    def record_one(result: tuple[_Teardown, str | None]) -> None:
        _record_outcome(session, *result, now)

    def not_recorded(result: tuple[_Teardown, str | None], exc: Exception) -> None:
        if not blames_item(exc):
            raise exc
        report_item_failure(_LOOP, f"teardown {result[0].id}", exc, "outcome not recorded")

    # One row's update fails: each in a savepoint, alone.
    with ctx.db.write() as session:
        check_fences(session, (fence,))
        write_batch_or_each(
            session, results, record_all, record_one, blames_item, not_recorded, "teardown"
        )
    return sum(1 for error in outcomes if error is None)


def _put_off(ctx: ServiceContext, unreadable: dict[str, Exception], now: datetime) -> None:
    """Rows that cannot be read: logged once, tried again at the longest backoff (so they
    do not take the batch's first places on every tick)."""
    for teardown_id, exc in unreadable.items():
        report_item_failure(_LOOP, f"teardown {teardown_id}", exc, "row not readable")
    later = now + timedelta(seconds=_BACKOFF_MAX_S)
    with ctx.db.write() as session:
        container_store.postpone_teardowns(session, unreadable, later)


def _record_outcome(session: Session, item: _Teardown, error: str | None, now: datetime) -> None:
    """Done: forget it. Failed: retry later, 5 s doubling to 5 min."""
    if error is None:
        container_store.forget_teardown(session, item.id)
        return
    delay = _BACKOFF_S * 2 ** min(item.attempts, 16)  # 2 ** attempts overflows a float
    container_store.retry_teardown(
        session,
        item.id,
        attempts=min(item.attempts, _MAX_ATTEMPTS) + 1,
        last_error=renderable(error[:2000]),  # agent text: NUL and lone surrogates out
        at=now + timedelta(seconds=min(delay, _BACKOFF_MAX_S)),
    )


def _grace(ctx: ServiceContext, grace_s: float | None) -> float:
    return ctx.settings.stop_grace_period_s if grace_s is None else grace_s


def _tear_down(ctx: ServiceContext, item: _Teardown) -> str | None:
    """Stop then remove; None when done (or already gone), else the error to retry on."""
    try:
        if item.kind is None:
            raise NotFound.for_object("server of container", item.handle)
        runtime = ctx.runtimes.for_kind(item.kind)
        runtime.stop(item.handle, item.grace_s)
        runtime.remove(item.handle)
    except NotFound:
        return None  # the server has no agent any more: nothing left to clean up
    except RuntimeFailure as exc:
        log.info("teardown_retry", handle=item.handle, error=exc.detail)
        return exc.detail
    except Exception as exc:  # its own problem: retried with backoff, the others go on
        report_item_failure(_LOOP, f"teardown {item.id}", exc, "not torn down", handle=item.handle)
        return f"teardown failed ({type(exc).__name__})"
    log.info("container_removed", handle=item.handle)
    return None
