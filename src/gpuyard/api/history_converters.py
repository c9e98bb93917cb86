"""History read models (domain/usage.py) -> response schemas (schemas/history.py)."""

from __future__ import annotations

from gpuyard.api.schemas.history import (
    Figure,
    FleetHistoryPublic,
    GpuUsagePoint,
    GpuUsageSeries,
    ServerHistoryPublic,
    UsagePoint,
)
from gpuyard.domain.usage import SERVER_FIGURES, Figures, UsageHistory, parse_gpu_figure


def _figure(figures: Figures, name: str) -> Figure | None:
    value = figures.get(name)
    return None if value is None else Figure(avg=value[0], max=value[1])


def _points(history: UsageHistory) -> list[UsagePoint]:
    return [
        UsagePoint(
            t=point.t,
            samples=point.samples,
            **{name: _figure(point.figures, name) for name in SERVER_FIGURES},
        )
        for point in history.points
    ]


def _gpu_series(history: UsageHistory) -> list[GpuUsageSeries]:
    by_gpu: dict[int, list[GpuUsagePoint]] = {}
    for point in history.points:
        per_gpu: dict[int, dict[str, Figure]] = {}
        for name, (avg, top) in point.figures.items():
            parsed = parse_gpu_figure(name)
            if parsed is not None:
                index, figure = parsed
                per_gpu.setdefault(index, {})[figure] = Figure(avg=avg, max=top)
        for index, figures in per_gpu.items():
            by_gpu.setdefault(index, []).append(
                GpuUsagePoint(t=point.t, samples=point.samples, **figures)
            )
    return [GpuUsageSeries(index=i, points=by_gpu[i]) for i in sorted(by_gpu)]


def server_history_public(history: UsageHistory, server_id: str) -> ServerHistoryPublic:
    return ServerHistoryPublic(
        server_id=server_id,
        window=history.window,
        bucket_s=history.bucket_s,
        since=history.since,
        until=history.until,
        points=_points(history),
        gpus=_gpu_series(history),
    )


def fleet_history_public(history: UsageHistory) -> FleetHistoryPublic:
    return FleetHistoryPublic(
        window=history.window,
        bucket_s=history.bucket_s,
        since=history.since,
        until=history.until,
        points=_points(history),
    )
