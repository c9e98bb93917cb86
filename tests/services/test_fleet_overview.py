"""The fleet overview's "free now" against the scheduler itself: what it offers for each
GPU model starts when submitted alone, and one more whole GPU or a larger share does not.
The totals add up over the servers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.fleet_overview import largest_gpu_share
from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuDevice,
    PendingWorkload,
    SchedulerConfig,
    ServerView,
)
from gpuyard.services.fleet.overview import free_now, overview_of

#: Models whose words do not overlap, so the scheduler's word match picks exactly them.
MODELS = ("A100", "H100", "L4")


@st.composite
def servers(draw: st.DrawFn) -> list[ServerView]:
    views = []
    for number in range(draw(st.integers(0, 5))):
        model = draw(st.sampled_from(MODELS))
        gpus = tuple(
            GpuDevice(index, model, 0, draw(st.sampled_from((0, 0, 300, 700, 900, 1000))))
            for index in range(draw(st.integers(0, 4)))
        )
        capacity = Resources(
            draw(st.integers(1, 64)) * 1000, draw(st.integers(1, 64)) * 1024, 0, 1000 * len(gpus)
        )
        allocated = Resources(
            draw(st.integers(0, capacity.cpu_milli // 100)) * 100,
            draw(st.integers(0, capacity.ram_mib // 1024)) * 1024,
            0,
            sum(g.allocated_milli for g in gpus),
        )
        status = draw(st.sampled_from(list(ServerStatus)))
        views.append(ServerView(f"s{number}", f"s{number}", "c", status, capacity, allocated, gpus))
    return views


def _starts(views: list[ServerView], request: Resources, model: str | None) -> bool:
    pending = PendingWorkload("w", 3, 0.0, request, name="probe", gpu_model=model)
    config = SchedulerConfig(preemption=False)
    result = schedule_cycle(ClusterSnapshot(servers=tuple(views)), [pending], config, 1.0)
    return bool(result.admitted)


@settings(max_examples=150, deadline=None)
@given(views=servers())
def test_what_free_now_offers_starts_and_one_more_gpu_does_not(views: list[ServerView]) -> None:
    for free in free_now(views):
        alongside = free.alongside
        if free.server_id is None:
            assert (free.servers, free.whole_gpus, free.gpu_share_milli) == (0, 0, 0)
            continue
        whole = Resources(
            alongside.cpu_milli, alongside.ram_mib, alongside.storage_mib, free.whole_gpus * 1000
        )
        assert _starts(views, whole, free.gpu_model), (free, views)
        if free.gpu_model is None:
            continue
        assert not _starts(views, Resources(gpu_milli=(free.whole_gpus + 1) * 1000), free.gpu_model)
        if free.gpu_share_milli:
            share = Resources(gpu_milli=free.gpu_share_milli)
            assert _starts(views, share, free.gpu_model), (free, views)
        bigger = free.gpu_share_milli + 100
        if bigger < GPU_MILLI:
            assert not _starts(views, Resources(gpu_milli=bigger), free.gpu_model)


@settings(max_examples=100, deadline=None)
@given(views=servers())
def test_totals_add_up_over_the_servers(views: list[ServerView]) -> None:
    overview = overview_of(views)
    assert sum(overview.servers_by_status.values()) == len(views)
    assert overview.capacity.cpu_milli == sum(v.capacity.cpu_milli for v in views)
    assert overview.allocated.gpu_milli == sum(v.allocated.gpu_milli for v in views)
    online = [v for v in views if v.status is ServerStatus.ONLINE]
    assert overview.free.cpu_milli == sum(v.free.cpu_milli for v in online)
    assert sum(m.devices for m in overview.gpu_models) == sum(len(v.gpus) for v in views)
    assert sum(m.free_devices for m in overview.gpu_models) == sum(
        1 for v in online for g in v.gpus if g.allocated_milli == 0
    )


@pytest.mark.parametrize(
    ("room", "share"),
    [(1000, 950), (990, 950), (700, 700), (120, 100), (60, 50), (49, 0), (0, 0)],
    ids=[
        "free device: at most 0.95",
        "rounds down",
        "exact",
        "two steps",
        "one step",
        "too little",
        "full",
    ],
)
def test_largest_share_is_a_valid_request(room: int, share: int) -> None:
    assert largest_gpu_share(room) == share
