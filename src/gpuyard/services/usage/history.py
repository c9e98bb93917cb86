"""Reads of the utilisation/allocation history: a server's series (its GPUs' figures
among them) and the fleet's, over a window, at the level that window is kept at."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gpuyard.domain.errors import NotFound
from gpuyard.domain.usage import (
    WINDOW_SECONDS,
    HistoryPoint,
    HistoryWindow,
    UsageHistory,
    bucket_for,
    bucket_start,
)
from gpuyard.services.context import ServiceContext
from gpuyard.store import fleet, usage_history
from gpuyard.store.usage_tables import FLEET_SERIES


def server_history(ctx: ServiceContext, server_id: str, window: HistoryWindow) -> UsageHistory:
    """One server's history over ``window`` (NotFound when there is no such server)."""
    with ctx.db.read() as session:
        if fleet.server_row(session, server_id) is None:
            raise NotFound.for_object("server", server_id)
        return _history(ctx, session, server_id, window)


def fleet_history(ctx: ServiceContext, window: HistoryWindow) -> UsageHistory:
    """The fleet's totals over ``window``."""
    with ctx.db.read() as session:
        return _history(ctx, session, FLEET_SERIES, window)


def _history(
    ctx: ServiceContext, session: Session, series: str, window: HistoryWindow
) -> UsageHistory:
    bucket = bucket_for(window)
    width = bucket or ctx.settings.history_sample_interval_s
    # The window's buckets, ending with the one ``now`` falls in (a rollup's bucket is
    # written once it has closed, so the newest point of a rolled-up level lags behind).
    until = bucket_start(int(ctx.now().timestamp()), width) + width
    since = until - WINDOW_SECONDS[window]
    stored = usage_history.series_points(session, series, bucket, since, until)
    points = tuple(HistoryPoint(_time(p.t), p.samples, p.figures) for p in stored)
    return UsageHistory(
        subject=series,
        window=window,
        bucket_s=width,
        since=_time(since),
        until=_time(until),
        points=points,
    )


def _time(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
