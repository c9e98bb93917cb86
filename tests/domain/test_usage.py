"""The history's figures (domain/usage.py): samples stay percentages, rollups keep the
mean and the highest of their raw samples, and a window reads the level it is kept at."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.usage import (
    CPU_ALLOCATED,
    CPU_USED,
    GPU_ALLOCATED,
    GPU_MEMORY_USED,
    GPU_UTILIZATION,
    MINUTE_BUCKET_S,
    QUARTER_BUCKET_S,
    RAM_USED,
    GpuLoad,
    GpuReading,
    HistoryWindow,
    UsageReading,
    bucket_for,
    bucket_start,
    fleet_sample,
    gpu_figure,
    merge_rollups,
    roll_up,
    server_sample,
)

NAMES = st.sampled_from(["cpu_used", "ram_used", "gpu.0.utilization", "gpu.1.allocated"])
PERCENT = st.floats(min_value=0, max_value=100, allow_nan=False)
SAMPLE = st.dictionaries(NAMES, PERCENT, max_size=4)


@given(st.lists(SAMPLE, min_size=1, max_size=60))
def test_a_rollup_keeps_the_mean_and_the_highest_of_its_samples(
    samples: list[dict[str, float]],
) -> None:
    count, figures = roll_up(samples)

    assert count == len(samples)
    for name in {n for s in samples for n in s}:
        values = [s[name] for s in samples if name in s]
        avg, top = figures[name]
        assert top == max(values)
        assert min(values) - 1e-9 <= avg <= top + 1e-9
        assert math.isclose(avg * len(values), sum(values), rel_tol=1e-9, abs_tol=1e-6)
    # a figure no sample had stays unknown, never 0
    assert set(figures) == {n for s in samples for n in s}


@given(st.lists(st.lists(SAMPLE, min_size=1, max_size=10), min_size=1, max_size=6))
def test_the_highest_of_rollups_is_the_highest_of_all_their_samples(
    buckets: list[list[dict[str, float]]],
) -> None:
    """What a coarser chart shows as its peak is the peak of the raw samples."""
    everything = [s for bucket in buckets for s in bucket]
    _, whole = roll_up(everything)
    parts = [roll_up(bucket)[1] for bucket in buckets]
    for name, (_, top) in whole.items():
        assert top == max(part[name][1] for part in parts if name in part)


ROLLUP = st.tuples(
    st.integers(1, 90),
    st.dictionaries(NAMES, st.tuples(PERCENT, PERCENT).map(lambda p: (min(p), max(p)))),
)
FULL_SAMPLE = st.fixed_dictionaries(
    {name: PERCENT for name in ("cpu_used", "ram_used", "gpu.0.utilization")}
)


@given(st.lists(st.lists(FULL_SAMPLE, min_size=1, max_size=10), min_size=1, max_size=6))
def test_merging_rollups_equals_rolling_up_every_sample(
    buckets: list[list[dict[str, float]]],
) -> None:
    """Quarters merged from minutes hold what rolling up every raw sample gives, when
    every sample has every figure (the usual case)."""
    count, whole = roll_up(s for bucket in buckets for s in bucket)

    merged_count, merged = merge_rollups(roll_up(bucket) for bucket in buckets)

    assert merged_count == count
    assert set(merged) == set(whole)
    for name, (avg, top) in whole.items():
        assert merged[name] == (pytest.approx(avg, abs=1e-6), top)


@given(st.lists(ROLLUP, min_size=1, max_size=20))
def test_a_merged_rollup_stays_within_what_it_merged(
    rollups: list[tuple[int, dict[str, tuple[float, float]]]],
) -> None:
    count, merged = merge_rollups(rollups)

    assert count == sum(n for n, _ in rollups)
    for name, (avg, top) in merged.items():
        parts = [figures[name] for _, figures in rollups if name in figures]
        assert top == max(t for _, t in parts)
        assert min(a for a, _ in parts) - 1e-9 <= avg <= max(a for a, _ in parts) + 1e-9


COUNTER = st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)).map(
    lambda pair: (min(pair), max(pair))
)
READING = st.floats(min_value=-50, max_value=500, allow_nan=False) | st.none()


@given(
    COUNTER,
    st.lists(st.integers(0, 1000), max_size=8),
    READING,
    st.lists(st.tuples(READING, READING), max_size=10),
)
def test_a_server_sample_holds_percentages_only(
    cpu: tuple[int, int],
    gpu_shares: list[int],
    cpu_used: float | None,
    gpu_readings: list[tuple[float | None, float | None]],
) -> None:
    gpus = [GpuLoad(i, milli, 81920) for i, milli in enumerate(gpu_shares)]
    reading = UsageReading(
        cpu_used,
        None,
        tuple(GpuReading(i, u, m) for i, (u, m) in enumerate(gpu_readings)),
    )
    total = (sum(gpu_shares), 1000 * len(gpu_shares))

    sample = server_sample({CPU_ALLOCATED: cpu, GPU_ALLOCATED: total}, gpus, reading)

    assert all(0 <= value <= 100 for value in sample.values())
    assert RAM_USED not in sample  # not reported: unknown, not 0
    assert (CPU_USED in sample) == (cpu_used is not None)
    for gpu in gpus:
        assert sample[gpu_figure(gpu.index, "allocated")] == gpu.allocated_milli / 10
    # readings of devices the server record does not have are ignored
    assert not any(name.startswith(f"gpu.{len(gpus)}.") for name in sample)


def test_a_server_sample_without_a_reading_has_allocation_only() -> None:
    gpus = [GpuLoad(0, 500, 1), GpuLoad(1, 0, 1)]

    sample = server_sample({CPU_ALLOCATED: (2000, 8000)}, gpus, None)

    assert sample == {CPU_ALLOCATED: 25.0, "gpu.0.allocated": 50.0, "gpu.1.allocated": 0.0}


def test_the_fleet_sums_allocations_and_averages_usage() -> None:
    allocated = [{GPU_ALLOCATED: (1000, 8000)}, {GPU_ALLOCATED: (3000, 4000)}]
    samples = [{GPU_UTILIZATION: 20.0, GPU_MEMORY_USED: 10.0}, {GPU_UTILIZATION: 60.0}]

    fleet = fleet_sample(allocated, samples)

    assert fleet == {GPU_ALLOCATED: pytest.approx(100 * 4000 / 12000), GPU_UTILIZATION: 40.0,
                     GPU_MEMORY_USED: 10.0}  # fmt: skip


@pytest.mark.parametrize(
    ("window", "bucket"),
    [
        (HistoryWindow.HOUR, 0),
        (HistoryWindow.SIX_HOURS, MINUTE_BUCKET_S),
        (HistoryWindow.DAY, MINUTE_BUCKET_S),
        (HistoryWindow.WEEK, QUARTER_BUCKET_S),
        (HistoryWindow.MONTH, QUARTER_BUCKET_S),
    ],
    ids=lambda v: str(v),
)
def test_each_window_reads_one_level(window: HistoryWindow, bucket: int) -> None:
    assert bucket_for(window) == bucket


@given(st.integers(0, 2**40), st.sampled_from([10, 60, 900]))
def test_bucket_start_is_the_bucket_a_time_falls_in(epoch_s: int, width: int) -> None:
    start = bucket_start(epoch_s, width)
    assert start % width == 0
    assert start <= epoch_s < start + width
