"""The cleanup loop: stops (with the grace period) and removes containers whose
reservation was released, through their agent, retrying with backoff until done.

Rows come from the transaction that released the reservation (stop, delete, preemption,
re-queue, a lost server), so the database never forgets a container it must clean up.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from gpuyard.domain.errors import NotFound
from gpuyard.log import get_logger
from gpuyard.runtimes.docker import AgentError
from gpuyard.services.context import ServiceContext
from gpuyard.store.runtime_tables import ContainerTeardownRow

log = get_logger(__name__)
BATCH = 64
#: Retry backoff: 5 s doubling to 5 min.
_BACKOFF_S, _BACKOFF_MAX_S = 5.0, 300.0


@dataclass(frozen=True)
class _Teardown:
    id: str
    handle: str
    grace_s: float
    attempts: int


def run_teardowns(ctx: ServiceContext) -> int:
    """One tick: returns how many containers are gone for good."""
    now = ctx.now()
    t = ContainerTeardownRow
    with ctx.db.read() as session:
        due = [
            _Teardown(row.id, row.handle, _grace(ctx, row.grace_s), row.attempts)
            for row in session.execute(
                select(t.id, t.handle, t.grace_s, t.attempts)
                .where(t.next_attempt_at <= now)
                .order_by(t.next_attempt_at)
                .limit(BATCH)
            )
        ]
    if not due:
        return 0
    # Stops wait out their grace period: run them side by side, not one after another.
    with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
        outcomes = list(pool.map(lambda item: _tear_down(ctx, item), due))
    with ctx.db.write() as session:
        for item, error in zip(due, outcomes, strict=True):
            if error is None:
                session.execute(delete(t).where(t.id == item.id))
                continue
            delay = min(_BACKOFF_S * 2**item.attempts, _BACKOFF_MAX_S)
            session.execute(
                update(t)
                .where(t.id == item.id)
                .values(
                    attempts=item.attempts + 1,
                    last_error=error[:2000],
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            )
    return sum(1 for error in outcomes if error is None)


def _grace(ctx: ServiceContext, grace_s: float | None) -> float:
    return ctx.settings.stop_grace_period_s if grace_s is None else grace_s


def _tear_down(ctx: ServiceContext, item: _Teardown) -> str | None:
    """Stop then remove; None when done (or already gone), else the error to retry on."""
    runtime = ctx.agents.runtime
    try:
        runtime.stop(item.handle, item.grace_s)
        runtime.remove(item.handle)
    except NotFound:
        return None  # the server has no agent any more: nothing left to clean up
    except AgentError as exc:
        log.info("teardown_retry", handle=item.handle, error=exc.detail)
        return exc.detail
    log.info("container_removed", handle=item.handle)
    return None
