"""An aligned loop (the history loop) ticks once in every slot of its interval: its sleeps
end just past the next slot boundary, whatever its ticks take, so no slot is skipped and
none sampled twice (``sample_usage`` files each sample into a fixed slot)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from factories.app import make_context, make_settings
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.usage import bucket_start
from gpuyard.services.background import build_loops
from gpuyard.services.loops.runner import Loop, LoopRunner

INTERVAL_S = 10


def _slots_ticked(loop: Loop, start: float, tick_seconds: list[float], early_s: float) -> list[int]:
    """The slots of a run of ticks on a fake clock: each tick takes its seconds, and each
    sleep ends ``early_s`` before it was asked to (a wait that wakes a little early)."""
    now = start
    slots = []
    for took in tick_seconds:
        slots.append(bucket_start(int(now), int(loop.interval_s)))
        now += took
        now += loop.next_delay(now) - early_s
    return slots


@given(
    first_slot=st.integers(min_value=170_000_000, max_value=180_000_000),
    tick_seconds=st.lists(st.floats(min_value=0.0, max_value=INTERVAL_S * 0.9), min_size=2),
    early_s=st.floats(min_value=0.0, max_value=0.1),
)
def test_an_aligned_loop_ticks_once_in_every_slot(
    first_slot: int, tick_seconds: list[float], early_s: float
) -> None:
    loop = Loop(
        "aligned", INTERVAL_S, tick=lambda _fence: None, jitter=0.0, lease=None, aligned=True
    )
    # Each tick, the first one too, starts just past a boundary and ends within its slot.
    slots = _slots_ticked(loop, first_slot * INTERVAL_S + 0.2, tick_seconds, early_s)
    first = slots[0]
    assert slots == [first + i * INTERVAL_S for i in range(len(slots))]


def test_an_aligned_loop_takes_no_jitter() -> None:
    with pytest.raises(ValueError, match="aligned"):
        Loop("aligned", INTERVAL_S, tick=lambda _fence: None, jitter=0.2, lease=None, aligned=True)


def test_the_history_loop_is_aligned_to_its_sampling_slots(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None, history_sample_interval_s=INTERVAL_S)
    ctx = make_context(settings)
    try:
        history = next(loop for loop in build_loops(ctx) if loop.name == "history")
    finally:
        ctx.db.dispose()
    assert history.aligned
    assert history.jitter == 0.0
    # Ticks of 0 to 9 s, each followed by its sleep: every 10-second slot sampled once.
    slots = _slots_ticked(history, 1.75e9 + 0.2, [0.1, 9.0, 4.5, 0.0, 8.9, 2.0], early_s=0.05)
    assert len(set(slots)) == len(slots) == 6
    assert slots[-1] - slots[0] == 5 * INTERVAL_S


def test_an_aligned_loop_first_ticks_at_a_slot_boundary_not_at_start() -> None:
    """At start-up the history tick would meet the process's warm-up and its first
    requests; it waits for the next boundary instead."""
    interval = 2
    while not 0.05 <= time.time() % interval <= 0.5:  # start early in a slot
        time.sleep(0.02)
    ticked: list[float] = []
    loop = Loop(
        "aligned",
        interval,
        tick=lambda _fence: ticked.append(time.time()),
        jitter=0.0,
        lease=None,
        aligned=True,
    )
    runner = LoopRunner([loop])
    started = time.time()
    runner.start()
    try:
        deadline = time.monotonic() + 3 * interval
        while not ticked and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert ticked, "the aligned loop never ticked"
    assert bucket_start(int(ticked[0]), interval) > bucket_start(int(started), interval)
