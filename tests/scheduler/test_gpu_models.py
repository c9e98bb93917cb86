"""GPU models done right: several acceptable models per request (``A|B``) and FGD that keeps
the models pinned work needs free for it (model pressure, candidates per model class)."""

from __future__ import annotations

from collections import defaultdict

from factories.scheduler import (
    make_cycle,
    make_pending,
    make_running,
    make_server,
    make_snapshot,
    res,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.gpu_match import (
    MAX_MODEL_ALTERNATIVES,
    device_matches,
    model_key,
    model_problem,
)
from gpuyard.scheduler.plugins.fgd import WorkloadMix
from gpuyard.scheduler.snapshot import SchedulerConfig

T4 = "Tesla T4"
V100 = "Tesla V100-SXM2-32GB"
H100 = "NVIDIA H100 80GB HBM3"


def test_any_alternative_matches() -> None:
    key = model_key("T4 | v100")
    assert device_matches(key, T4)
    assert device_matches(key, V100)
    assert not device_matches(key, H100)
    # Order and spacing do not change the key; blank alternatives are dropped.
    assert key == model_key("V100|T4") == model_key("|V100||T4|")
    assert model_key(" | ") is None


def test_model_problem_bounds_the_request() -> None:
    assert model_problem("V100M16|V100M32") is None
    assert model_problem("H100") is None
    too_many = "|".join(f"m{i}" for i in range(MAX_MODEL_ALTERNATIVES + 1))
    assert "at most" in (model_problem(too_many) or "")
    assert "letter or digit" in (model_problem("A100||H100") or "")
    assert "control" in (model_problem("H100\x00") or "")
    assert "64 characters" in (model_problem("x" * 65) or "")


def test_pressure_is_highest_on_the_model_pinned_work_needs() -> None:
    mix = WorkloadMix(
        [
            (make_pending("a", gpu=1).resources, "T4", 1.0),
            (make_pending("b", gpu=1).resources, None, 3.0),
        ]
    )
    pressure = mix.model_pressure({T4: 2000, H100: 16000})
    # A quarter of the demand can only use T4, which holds a ninth of the free GPU.
    assert pressure[T4] > 1
    assert H100 not in pressure


def _fleet_with_a_scarce_model() -> tuple[list, list]:  # type: ignore[type-arg]
    servers = [
        # Tightest for a 1-GPU request: one T4 device left (the other runs "pinned").
        make_server("t4", models=[T4, T4]),
        make_server("h100", gpus=8, model=H100),
    ]
    # Work pinned to T4 runs there: the learned mix knows T4 is wanted.
    running = [make_running("pinned", "t4", gpus=[0], cpu=4, model="T4")]
    return servers, running


def test_unconstrained_work_keeps_the_scarce_model_free() -> None:
    servers, running = _fleet_with_a_scarce_model()
    queue = [make_pending("any", gpu=1, cpu=4)]
    snapshot = make_snapshot(servers, running)
    # Best-fit packing takes the tightest server: the last T4.
    packed = schedule_cycle(snapshot, queue, SchedulerConfig(profile="binpack"), 0.0)
    assert packed.admitted[0].assignments[0].server_id == "t4"
    # The default profile, even scoring one candidate per model class, keeps it free.
    for cap in (1, 64, 0):
        config = SchedulerConfig(profile="pack", candidates_to_score=cap)
        result = schedule_cycle(snapshot, queue, config, 0.0)
        assert result.admitted[0].assignments[0].server_id == "h100", cap


def test_pinned_work_still_gets_the_scarce_model() -> None:
    servers, running = _fleet_with_a_scarce_model()
    queue = [make_pending("t4-again", gpu=1, cpu=4, model="T4|A10")]
    result = schedule_cycle(make_snapshot(servers, running), queue, SchedulerConfig(), 0.0)
    assert result.admitted[0].assignments[0].server_id == "t4"


def test_the_reserve_follows_the_cycles_own_placements() -> None:
    """One cycle decides unpinned work before the work pinned to each model. At the cycle's
    start both models are equally pressed (each gets a quarter of the demand and holds half
    the free GPU), so a pressure fixed at the start ties them and every unpinned replica
    goes to one server (the id decides), leaving its pinned work no device. The pressure
    must follow the cycle's own placements: each unpinned GPU taken from one model makes
    that model the scarcer one for the next replica."""
    servers = [make_server("a-h100", gpus=4, model=H100), make_server("b-t4", gpus=4, model=T4)]
    queue = [make_pending(f"any{i}", gpu=1, cpu=2, submitted_at=i) for i in range(4)]
    queue += [
        make_pending(f"{model}{i}", gpu=1, cpu=2, model=model, submitted_at=10 + i)
        for model in ("H100", "T4")
        for i in range(2)
    ]
    result = schedule_cycle(make_snapshot(servers), queue, SchedulerConfig(), 0.0)
    placed = {a.workload_id: a.assignments[0].server_id for a in result.admitted}
    assert len(placed) == len(queue), result.pending
    unpinned = [placed[f"any{i}"] for i in range(4)]
    assert sorted(unpinned) == ["a-h100", "a-h100", "b-t4", "b-t4"]


def test_the_gpu_tally_follows_every_device_change() -> None:
    servers = [
        make_server("mixed", models=[T4, H100, H100]),
        make_server("t4", gpus=2, model=T4, gpu_used=[500, 0]),
        make_server("cpu-only"),
    ]
    cycle = make_cycle(servers, [make_running("r", "mixed", gpus=[1], model="H100")])
    tally = cycle.gpu_tally()
    assert tally.free == {T4: 2500, H100: 1000}
    assert cycle.gpu_tally() is tally  # counted once per cycle
    mixed, t4 = cycle.nodes["mixed"], cycle.nodes["t4"]
    cycle.assume(mixed, None, res(gpu=0.25), ((0, 250),))
    cycle.assume(t4, None, res(gpu=0.5), ((0, 500),))
    assert tally.free == {T4: 1750, H100: 1000}
    version = tally.version
    cycle.assume(t4, None, res(cpu=4), ())  # no device touched: no change counted
    assert tally.version == version
    restore = mixed.remove_running(("r", 0))  # what preemption tries, then takes back
    assert tally.free[H100] == 2000
    restore()
    cycle.forget(mixed, None, res(gpu=0.25), ((0, 250),))
    assert tally.free == {T4: 2000, H100: 1000}
    assert tally.version > version


MODELS = (T4, V100, H100)
MODEL_SETS = ("T4", "V100", "H100", "T4|V100", "V100|H100", "T4|H100", None)


@settings(max_examples=60, deadline=None)
@given(
    fleet=st.lists(
        st.tuples(st.sampled_from(MODELS), st.sampled_from((1, 2, 4, 8))), min_size=1, max_size=6
    ),
    requests=st.lists(
        st.tuples(st.sampled_from(MODEL_SETS), st.sampled_from((0.3, 0.5, 1, 2, 4))),
        min_size=1,
        max_size=25,
    ),
    cap=st.sampled_from((0, 1, 2, 64)),
)
def test_placements_satisfy_the_model_set_and_never_oversubscribe(
    fleet: list[tuple[str, int]], requests: list[tuple[str | None, float]], cap: int
) -> None:
    servers = [make_server(f"s{i}", gpus=n, model=m, cpu=32) for i, (m, n) in enumerate(fleet)]
    queue = [
        make_pending(f"w{i:03d}", gpu=gpu, cpu=2, model=model)
        for i, (model, gpu) in enumerate(requests)
    ]
    by_id = {w.workload_id: w for w in queue}
    models = {s.id: {g.index: g.model for g in s.gpus} for s in servers}
    config = SchedulerConfig(profile="pack", candidates_to_score=cap)
    result = schedule_cycle(make_snapshot(servers), queue, config, 0.0)
    used: dict[tuple[str, int], int] = defaultdict(int)
    cpu: dict[str, int] = defaultdict(int)
    for admission in result.admitted:
        workload = by_id[admission.workload_id]
        key = model_key(workload.gpu_model)
        for assignment in admission.assignments:
            assert sum(m for _, m in assignment.gpu_allocation) == workload.resources.gpu_milli
            cpu[assignment.server_id] += workload.resources.cpu_milli
            for index, milli in assignment.gpu_allocation:
                assert device_matches(key, models[assignment.server_id][index])
                used[(assignment.server_id, index)] += milli
    assert all(milli <= 1000 for milli in used.values())
    assert all(total <= 32_000 for total in cpu.values())
