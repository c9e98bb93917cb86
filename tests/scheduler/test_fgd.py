"""Scorer ``fgd`` (Fragmentation Gradient Descent): the fragmentation measure and its choices."""

from __future__ import annotations

import pytest
from factories.scheduler import (
    H100,
    make_cycle,
    make_pending,
    make_request,
    make_running,
    make_server,
    make_snapshot,
    res,
)

from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.plugins.fgd import GENERIC_MIX, FgdScorer, WorkloadMix
from gpuyard.scheduler.snapshot import SchedulerConfig

A100 = "NVIDIA A100-SXM4-80GB"
EIGHT = (H100,) * 8
FGD = SchedulerConfig(profile="fgd")


def frag(
    mix: WorkloadMix, alloc: list[int], cpu_free: float = 64, models: tuple[str, ...] = EIGHT
) -> float:
    """Fragmentation (milli) of a server with 512 GB free, ``cpu_free`` cores free."""
    return FgdScorer(mix).fragmentation(tuple(models), round(cpu_free * 1000), 512 * 1024, alloc)


def test_a_mix_needs_a_positive_weight() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        WorkloadMix([(res(gpu=1), None, 0.0)])


def test_free_whole_gpus_are_no_fragment_for_whole_gpu_tasks() -> None:
    mix = WorkloadMix([(res(cpu=4, gpu=1), None, 1.0)])
    assert frag(mix, [0] * 8) == 0
    assert frag(mix, [1000] * 8) == 0  # nothing free, nothing fragmented


def test_a_partly_used_gpu_is_a_fragment_for_whole_gpu_tasks() -> None:
    mix = WorkloadMix([(res(cpu=4, gpu=1), None, 1.0)])
    assert frag(mix, [600] + [1000] * 7) == 400


def test_a_share_fits_only_where_enough_of_one_gpu_is_left() -> None:
    mix = WorkloadMix([(res(cpu=1, gpu=0.5), None, 1.0)])
    assert frag(mix, [600, 400] + [1000] * 6) == 400  # 400 free: too little for 0.5
    assert frag(mix, [400, 1000] + [1000] * 6) == 0  # 600 free: a 0.5 task fits there


def test_without_cpu_for_the_task_every_free_gpu_is_a_fragment() -> None:
    mix = WorkloadMix([(res(cpu=8, gpu=1), None, 1.0)])
    assert frag(mix, [0] * 8, cpu_free=4) == 8000


def test_tasks_without_gpu_can_use_no_free_gpu() -> None:
    mix = WorkloadMix([(res(cpu=1), None, 1.0), (res(cpu=1, gpu=1), None, 1.0)])
    assert frag(mix, [0] * 8) == pytest.approx(4000)  # half the mix uses none of the 8000


def test_a_gpu_of_another_model_is_a_fragment() -> None:
    mix = WorkloadMix([(res(cpu=1, gpu=1), "A100", 1.0)])
    assert frag(mix, [0] * 8) == 8000
    mixed = (A100,) * 4 + (H100,) * 4
    assert frag(mix, [0] * 8, models=mixed) == 4000


def test_weights_are_popularity() -> None:
    mix = WorkloadMix([(res(cpu=1, gpu=1), None, 3.0), (res(cpu=1, gpu=0.5), None, 1.0)])
    # 400 free on one GPU: unusable by the whole-GPU tasks (3/4), usable by none of 0.5.
    assert frag(mix, [600] + [1000] * 7) == pytest.approx(400)
    # 600 free: unusable by the whole-GPU tasks only.
    assert frag(mix, [400] + [1000] * 7) == pytest.approx(0.75 * 600)


def test_device_order_does_not_matter_on_a_single_model_server() -> None:
    mix = GENERIC_MIX
    assert frag(mix, [300, 0, 1000, 700] * 2) == frag(mix, [1000, 700, 0, 300] * 2)


def test_a_share_fills_the_gpu_that_is_a_fragment_anyway() -> None:
    fresh = make_server("a-fresh", gpus=8)
    used = make_server("b-used", gpus=8)
    running = [make_running("old", "b-used", gpus=[0], share=0.7)]
    snapshot = make_snapshot([fresh, used], running)
    result = schedule_cycle(snapshot, [make_pending("w", gpu=0.3)], FGD, now=0.0)
    ((assignment,),) = [a.assignments for a in result.admitted]
    assert (assignment.server_id, assignment.gpu_allocation) == ("b-used", ((0, 300),))


def test_a_whole_gpu_goes_where_it_keeps_a_full_server_whole() -> None:
    full = make_server("a-empty", gpus=8)
    almost = make_server("b-one-left", gpus=8)
    running = [make_running("big", "b-one-left", gpus=list(range(7)), cpu=8)]
    snapshot = make_snapshot([full, almost], running)
    result = schedule_cycle(snapshot, [make_pending("w", gpu=1)], FGD, now=0.0)
    assert [a.server_id for adm in result.admitted for a in adm.assignments] == ["b-one-left"]


def test_score_is_the_decrease_of_fragmentation() -> None:
    mix = WorkloadMix([(res(cpu=1, gpu=1), None, 1.0)])
    scorer = FgdScorer(mix)
    server = make_server("s", gpus=2)
    cycle = make_cycle([server])
    node = cycle.nodes["s"]
    req = make_request(make_pending("w", gpu=0.5))
    # A 0.5 share on a free GPU leaves 500 that no whole-GPU task can use: +500 fragment.
    assert scorer.score(req, node, ((0, 500),)) == -500
