"""Usage readings and the figures of the utilisation/allocation history (issue 15).

Plain values, no I/O. A *reading* is what a server uses now (CPU, RAM, each GPU's
utilisation and memory), as its agent reports it or as the simulated runtime makes it up
from the server's allocations (``ServerLoad``). A *sample* is one point of the history: a
flat mapping from a figure's name to a percentage (0-100). A figure that is not known
(no reading) is absent, never 0. Rolled-up points keep, for each figure, the mean and the
highest of the raw samples of their bucket (:func:`roll_up`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeGuard

#: Figures of a server (and of the whole fleet), in percent of capacity.
CPU_ALLOCATED = "cpu_allocated"
RAM_ALLOCATED = "ram_allocated"
STORAGE_ALLOCATED = "storage_allocated"
GPU_ALLOCATED = "gpu_allocated"
CPU_USED = "cpu_used"
RAM_USED = "ram_used"
#: Mean over the GPUs that reported one.
GPU_UTILIZATION = "gpu_utilization"
GPU_MEMORY_USED = "gpu_memory_used"
SERVER_FIGURES = (
    CPU_ALLOCATED,
    RAM_ALLOCATED,
    STORAGE_ALLOCATED,
    GPU_ALLOCATED,
    CPU_USED,
    RAM_USED,
    GPU_UTILIZATION,
    GPU_MEMORY_USED,
)
#: Figures of one GPU (its allocated share, utilisation and memory used), in percent.
GPU_FIGURES = ("allocated", "utilization", "memory_used")

#: A point's figures: name -> (mean, highest) over the raw samples of its bucket.
Figures = Mapping[str, tuple[float, float]]


def gpu_figure(index: int, name: str) -> str:
    """The key of one GPU's figure in a sample: ``gpu.<index>.<name>``."""
    return f"gpu.{index}.{name}"


def parse_gpu_figure(key: str) -> tuple[int, str] | None:
    """``gpu.<index>.<name>`` -> (index, name); None for any other key."""
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "gpu" or not parts[1].isdigit():
        return None
    if parts[2] not in GPU_FIGURES:
        return None
    return int(parts[1]), parts[2]


@dataclass(frozen=True)
class GpuLoad:
    """One GPU of a server, as far as its allocation goes."""

    index: int
    #: Share of the device reserved, 0-1000 (GPU milli-units).
    allocated_milli: int
    memory_mib: int


@dataclass(frozen=True)
class ServerLoad:
    """What a runtime may use to estimate a server's usage: its allocation now."""

    server_id: str
    cpu_share: float  # allocated / capacity, 0-1 (0 when the capacity is 0)
    ram_share: float
    gpus: tuple[GpuLoad, ...]


@dataclass(frozen=True)
class GpuReading:
    """One GPU's usage; None where the device does not say."""

    index: int
    utilization_pct: float | None
    memory_used_pct: float | None


@dataclass(frozen=True)
class UsageReading:
    """What a server uses, at one moment (``Runtime.estimate_usage`` returns this)."""

    cpu_used_pct: float | None
    ram_used_pct: float | None
    gpus: tuple[GpuReading, ...]


def percent(part: float, whole: float) -> float:
    """``part`` of ``whole`` in percent, clamped to 0-100 (0 of nothing is 0)."""
    if whole <= 0:
        return 0.0
    return min(100.0, max(0.0, 100.0 * part / whole))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def server_sample(
    allocated: Mapping[str, tuple[int, int]],
    gpus: Sequence[GpuLoad],
    reading: UsageReading | None,
) -> dict[str, float]:
    """One raw sample of a server: ``allocated`` maps CPU_ALLOCATED... to (allocated,
    capacity); the GPUs give their allocated share; ``reading`` (when known) the usage."""
    sample = {name: percent(used, whole) for name, (used, whole) in allocated.items()}
    for gpu in gpus:
        sample[gpu_figure(gpu.index, "allocated")] = percent(gpu.allocated_milli, 1000)
    if reading is None:
        return sample
    if _known(reading.cpu_used_pct):
        sample[CPU_USED] = _clamp(reading.cpu_used_pct)
    if _known(reading.ram_used_pct):
        sample[RAM_USED] = _clamp(reading.ram_used_pct)
    utilizations, memories = [], []
    known = {gpu.index for gpu in gpus}
    for gpu_reading in reading.gpus:
        if gpu_reading.index not in known:  # a device the server record does not have
            continue
        if _known(gpu_reading.utilization_pct):
            value = _clamp(gpu_reading.utilization_pct)
            sample[gpu_figure(gpu_reading.index, "utilization")] = value
            utilizations.append(value)
        if _known(gpu_reading.memory_used_pct):
            value = _clamp(gpu_reading.memory_used_pct)
            sample[gpu_figure(gpu_reading.index, "memory_used")] = value
            memories.append(value)
    if utilizations:
        sample[GPU_UTILIZATION] = _mean(utilizations)
    if memories:
        sample[GPU_MEMORY_USED] = _mean(memories)
    return sample


def fleet_sample(
    allocated: Iterable[Mapping[str, tuple[int, int]]], samples: Iterable[Mapping[str, float]]
) -> dict[str, float]:
    """The fleet's sample: allocation summed over servers against summed capacity; usage
    figures averaged over the servers that report them."""
    totals: dict[str, list[int]] = {}
    for server in allocated:
        for name, (used, whole) in server.items():
            total = totals.setdefault(name, [0, 0])
            total[0] += used
            total[1] += whole
    fleet = {name: percent(used, whole) for name, (used, whole) in totals.items()}
    usage: dict[str, list[float]] = {}
    for sample in samples:
        for name in (CPU_USED, RAM_USED, GPU_UTILIZATION, GPU_MEMORY_USED):
            if name in sample:
                usage.setdefault(name, []).append(sample[name])
    fleet.update({name: _mean(values) for name, values in usage.items()})
    return fleet


def _known(value: float | None) -> TypeGuard[float]:
    """A reading that says something (NaN or infinity from a driver says nothing)."""
    return value is not None and math.isfinite(value)


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, float(value)))


def roll_up(samples: Iterable[Mapping[str, float]]) -> tuple[int, dict[str, tuple[float, float]]]:
    """Raw samples of one bucket -> (how many, figure -> (mean, highest)). Each figure is
    averaged over the samples that have it; one no sample has stays absent."""
    count = 0
    values: dict[str, list[float]] = {}
    for sample in samples:
        count += 1
        for name, value in sample.items():
            values.setdefault(name, []).append(value)
    return count, {name: (_mean(v), max(v)) for name, v in values.items()}


def merge_rollups(
    points: Iterable[tuple[int, Figures]],
) -> tuple[int, dict[str, tuple[float, float]]]:
    """Rollups (raw sample count, figures) of consecutive buckets -> one coarser rollup:
    the highest of the highests, and the means weighted by each bucket's sample count
    (exact when every raw sample had the figure; else still between the least and the
    greatest of the means merged)."""
    total = 0
    weighted: dict[str, float] = {}
    weights: dict[str, int] = {}
    highest: dict[str, float] = {}
    for samples, figures in points:
        if samples <= 0:
            continue
        total += samples
        for name, (avg, top) in figures.items():
            weighted[name] = weighted.get(name, 0.0) + avg * samples
            weights[name] = weights.get(name, 0) + samples
            highest[name] = max(highest.get(name, top), top)
    return total, {name: (weighted[name] / weights[name], highest[name]) for name in weighted}


class HistoryWindow(StrEnum):
    """How far back a history answer reaches."""

    HOUR = "1h"
    SIX_HOURS = "6h"
    DAY = "1d"
    WEEK = "7d"
    MONTH = "30d"


#: Seconds each window spans.
WINDOW_SECONDS = {
    HistoryWindow.HOUR: 3600,
    HistoryWindow.SIX_HOURS: 6 * 3600,
    HistoryWindow.DAY: 86400,
    HistoryWindow.WEEK: 7 * 86400,
    HistoryWindow.MONTH: 30 * 86400,
}
#: Bucket sizes of the rolled-up levels (raw samples are level 0, at the sample interval).
#: Minutes are rolled up from raw samples, quarters from minutes; quarters keep the
#: server's (and fleet's) figures only, not each GPU's (the per-GPU charts span a day).
MINUTE_BUCKET_S = 60
QUARTER_BUCKET_S = 900
ROLLUP_BUCKETS = (MINUTE_BUCKET_S, QUARTER_BUCKET_S)


def bucket_for(window: HistoryWindow) -> int:
    """The level a window is read from: 0 (raw samples) for the last hour, 1-minute
    rollups up to a day, 15-minute rollups beyond."""
    if window is HistoryWindow.HOUR:
        return 0
    if window in (HistoryWindow.SIX_HOURS, HistoryWindow.DAY):
        return MINUTE_BUCKET_S
    return QUARTER_BUCKET_S


def longest_window_served(level: int) -> int:
    """Seconds of the longest window read from ``level`` (0: raw samples): the least its
    retention may be, or that window's older part would read as empty."""
    return max(WINDOW_SECONDS[window] for window in HistoryWindow if bucket_for(window) == level)


def bucket_start(epoch_s: int, bucket_s: int) -> int:
    """The start of the bucket ``epoch_s`` falls in."""
    return epoch_s - epoch_s % bucket_s


@dataclass(frozen=True)
class HistoryPoint:
    """One point of a series: the bucket's start, its raw sample count and its figures."""

    t: datetime
    samples: int
    figures: Figures


@dataclass(frozen=True)
class UsageHistory:
    """A series over a window (a server's, with its GPUs' figures among them, or the
    fleet's); ``bucket_s`` is the width of each point."""

    subject: str
    window: HistoryWindow
    bucket_s: int
    since: datetime
    until: datetime
    points: tuple[HistoryPoint, ...]
