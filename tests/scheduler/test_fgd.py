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
from gpuyard.scheduler.plugins.fgd import (
    GENERIC_MIX,
    FgdScorer,
    WorkloadMix,
    estimate_mix,
    observed_shapes,
)
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


# -- the mix learned per cycle (PreScore) ------------------------------------------------


def test_observed_shapes_count_running_and_missing_replicas() -> None:
    server = make_server("s", gpus=8)
    running = [
        make_running("r1", "s", gpus=[0], cpu=4),
        make_running("r2", "s", gpus=[1], cpu=4),
        make_running("pinned", "s", gpus=[2], cpu=4, model="H100|A100"),
        make_running("cpu-only", "s", cpu=2),
    ]
    cycle = make_cycle([server], running)
    queue = [
        make_request(make_pending("gang", gpu=2, cpu=8, replicas=3, model="H100")),
        make_request(make_pending("done", gpu=1, replicas=0)),  # nothing missing: not counted
        make_request(make_pending("more", gpu=1, cpu=4)),
    ]
    assert dict(observed_shapes(cycle, queue)) == {
        # Running replicas keep the model set they asked for (learned, not "any model").
        (res(cpu=4, gpu=1), None): 3,
        (res(cpu=4, gpu=1), "H100|A100"): 1,
        (res(cpu=2), None): 1,
        (res(cpu=8, gpu=2), "H100"): 3,
    }


def test_the_learned_mix_weighs_shapes_by_popularity() -> None:
    server = make_server("s", gpus=8)
    running = [make_running(f"r{i}", "s", gpus=[i], cpu=4) for i in range(3)]
    cycle = make_cycle([server], running)
    mix = estimate_mix(cycle, [make_request(make_pending("p", gpu=0.5, cpu=2))])
    # 3 whole-GPU tasks and 1 half-GPU task: 1000 milli free on one device is usable by
    # all of them, 600 only by the share (1/4 of the mix).
    assert frag(mix, [0] + [1000] * 7) == pytest.approx(0)
    assert frag(mix, [400] + [1000] * 7) == pytest.approx(0.75 * 600)
    # GPU asked per CPU asked, popularity-weighted: (3 x 1000 + 500) / (3 x 4000 + 2000).
    assert mix.gpu_per_cpu == pytest.approx(3500 / 14000)


def test_nothing_to_learn_from_gives_the_generic_mix() -> None:
    cycle = make_cycle([make_server("s", gpus=8)])
    assert estimate_mix(cycle, []) is GENERIC_MIX
    scorer = FgdScorer()
    assert scorer.learns
    assert scorer.prepare(cycle, []) is scorer  # empty queue: nothing will be scored


def test_prepare_learns_a_mix_only_without_a_fixed_one() -> None:
    server = make_server("s", gpus=8)
    cycle = make_cycle([server], [make_running("r", "s", gpus=[0], cpu=4)])
    queue = [make_request(make_pending("p", gpu=0.5, cpu=2))]
    fixed = FgdScorer(WorkloadMix([(res(gpu=1), None, 1.0)]))
    assert fixed.prepare(cycle, queue) is fixed
    learner = FgdScorer()
    learned = learner.prepare(cycle, queue)
    assert isinstance(learned, FgdScorer)
    assert learned is not learner
    assert not learned.learns
    assert [c.gpu_milli for _, classes in learned.mix.groups for c in classes] == [500, 1000]
    # The same running replicas and queue again: the same scorer (and memo) is reused.
    assert learner.prepare(cycle, queue) is learned
    other = [make_request(make_pending("p", gpu=0.5, cpu=3))]
    assert learner.prepare(cycle, other) is not learned


# -- stranding: free GPU the mix cannot reach for lack of CPU or RAM --------------------


def test_stranded_gpu_is_what_free_cpu_or_ram_cannot_feed() -> None:
    # 1 GPU per 8 cores and per 64 GB.
    scorer = FgdScorer(WorkloadMix([(res(cpu=8, ram_gb=64, gpu=1), None, 1.0)]))
    assert scorer.stranded(64_000, 512 * 1024, 8000) == 0  # balanced
    assert scorer.stranded(16_000, 512 * 1024, 8000) == pytest.approx(6000)  # 2 GPUs fed
    assert scorer.stranded(64_000, 128 * 1024, 8000) == pytest.approx(6000)  # RAM for 2
    assert scorer.stranded(0, 0, 0) == 0  # nothing free, nothing stranded
    assert FgdScorer(WorkloadMix([(res(cpu=8), None, 1.0)])).stranded(0, 0, 8000) == 0


def test_a_cpu_heavy_gpu_task_goes_where_cpu_is_plentiful() -> None:
    lean = make_server("a-lean", gpus=8, cpu=48)
    rich = make_server("b-rich", gpus=8, cpu=128)
    busy = make_server("c-busy", gpus=8, cpu=64)
    # The cluster runs 1-GPU tasks with 4 cores each: 1 GPU per 4-ish cores.
    running = [make_running(f"r{i}", "c-busy", gpus=[i], cpu=4) for i in range(8)]
    snapshot = make_snapshot([lean, rich, busy], running)
    heavy = make_pending("heavy", gpu=1, cpu=24)
    result = schedule_cycle(snapshot, [heavy], SchedulerConfig(), now=0.0)
    # On the lean server 24 of 48 cores would leave 24 for 7 GPUs: about 1 GPU stranded.
    assert [a.server_id for adm in result.admitted for a in adm.assignments] == ["b-rich"]
    # The paper's measure alone sees no difference: every task of the mix still fits both.
    cycle = make_cycle([lean, rich, busy], running)
    req = make_request(heavy)
    paper = FgdScorer(stranding=False).prepare(cycle, [req])
    assert isinstance(paper, FgdScorer)
    scores = {n: paper.score(req, cycle.nodes[n], ((0, 1000),)) for n in ("a-lean", "b-rich")}
    assert scores["a-lean"] == scores["b-rich"]
