"""Refusing what can never run within its limits (issue 21): scheduler/limit_feasibility.py
agrees with the engine.

The property: on an empty fleet with room to spare, a gang whose team (and department)
carry random quotas and per-GPU-model limits is placed by a real scheduling cycle exactly
when ``over_limits_alone`` accepts it. So a request accepted at submit never exceeds any
limit on its own (the cycle would not place it otherwise), and the refusal never turns
away work the scheduler could run."""

from __future__ import annotations

from dataclasses import replace

from factories.scheduler import A100, H100, make_pending, make_quota, make_server, make_snapshot
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.fairshare import QueueNode
from gpuyard.scheduler.limit_feasibility import (
    Held,
    LimitHolder,
    over_limits_alone,
    over_limits_with_held,
)
from gpuyard.scheduler.snapshot import SchedulerConfig

#: Room to spare: 32 GPUs of each model, 64 cores a server.
FLEET = [make_server(f"h{i}", gpus=8, model=H100) for i in range(4)] + [
    make_server(f"a{i}", gpus=8, model=A100) for i in range(4)
]
FLEET_MODELS = frozenset({H100, A100})

optional_gpus = st.one_of(st.none(), st.integers(0, 10))
model_limits = st.dictionaries(
    st.sampled_from(["H100", "A100", "H100 80GB"]), st.integers(0, 10), max_size=3
)


def _milli(gpus: int | None) -> int | None:
    return None if gpus is None else gpus * GPU_MILLI


@settings(max_examples=400, deadline=None)
@given(
    team_cpu=st.one_of(st.none(), st.integers(0, 16)),
    team_gpu=optional_gpus,
    team_models=model_limits,
    department=st.booleans(),
    dept_gpu=optional_gpus,
    dept_models=model_limits,
    gpu=st.sampled_from([0, 1, 2, 3, 4]),
    cpu=st.sampled_from([1, 4]),
    replicas=st.integers(1, 4),
    model=st.sampled_from([None, "H100", "A100", "A100|H100", "H100 80GB"]),
)
def test_over_limits_alone_agrees_with_a_cycle_on_an_empty_fleet(
    team_cpu: int | None,
    team_gpu: int | None,
    team_models: dict[str, int],
    department: bool,
    dept_gpu: int | None,
    dept_models: dict[str, int],
    gpu: int,
    cpu: int,
    replicas: int,
    model: str | None,
) -> None:
    team_limits = tuple((m, n * GPU_MILLI) for m, n in sorted(team_models.items()))
    dept_limits = tuple((m, n * GPU_MILLI) for m, n in sorted(dept_models.items()))
    teams = {
        "t": QueueNode("t", parent_id="d" if department else None, gpu_model_limits=team_limits)
    }
    holders = [
        LimitHolder(
            "team",
            "t",
            cpu_milli=None if team_cpu is None else team_cpu * 1000,
            gpu_milli=_milli(team_gpu),
            gpu_models=team_limits,
        )
    ]
    if department:
        teams["d"] = QueueNode(
            "d", limit=(None, None, None, _milli(dept_gpu)), gpu_model_limits=dept_limits
        )
        holders.append(
            LimitHolder("department", "d", gpu_milli=_milli(dept_gpu), gpu_models=dept_limits)
        )
    quota = make_quota("t", cpu=team_cpu, gpu=team_gpu)
    snapshot = replace(make_snapshot(FLEET, quotas=[quota]), teams=teams)
    request = make_pending(
        "w",
        gpu=gpu,
        cpu=cpu,
        model=model if gpu else None,
        team="t",
        replicas=replicas,
        gang=replicas > 1,
    )

    found = over_limits_alone(
        request.resources, replicas, request.gpu_model, holders, fleet_models=FLEET_MODELS
    )
    result = schedule_cycle(snapshot, [request], SchedulerConfig(), now=0)
    placed = sum(len(a.assignments) for a in result.admitted)
    event("refused on " + ",".join(f.field for f in found) if found else "accepted")
    assert placed in (0, replicas)
    assert (not found) == (placed == replicas), (found, result.pending)


def test_only_the_dimensions_a_change_grows_are_judged() -> None:
    team = LimitHolder("team", "ml", cpu_milli=2000, gpu_milli=2 * GPU_MILLI)
    big = Resources(cpu_milli=4000, gpu_milli=3 * GPU_MILLI)
    assert [f.field for f in over_limits_alone(big, 1, None, [team])] == ["cpu", "gpu"]
    # A limit lowered below a workload's size refuses only what grows past it.
    assert [f.field for f in over_limits_alone(big, 1, None, [team], grown={"gpu"})] == ["gpu"]
    assert over_limits_alone(big, 1, None, [team], grown=set()) == []


def test_held_counts_the_other_work_per_limit_and_model() -> None:
    team = LimitHolder("team", "ml", gpu_milli=4 * GPU_MILLI, gpu_models=(("H100", 3000),))
    others = Held(Resources(gpu_milli=2000), {H100: 1000, A100: 1000})
    two = Resources(gpu_milli=2000)
    # 2 + 2 GPUs is within the team's 4; 1 H100 + 2 on the H100 it holds is within 3.
    assert over_limits_with_held(two, 1, None, [H100], [(team, others)]) == []
    [over] = over_limits_with_held(
        Resources(gpu_milli=3000), 1, None, [H100], [(team, Held(Resources(), {H100: 1000}))]
    )
    assert over.message.startswith(
        "team ml would hold 4 GPUs, over team ml's H100 limit of 3 (its other work holds 1"
    )
    # On an A100 its GPUs do not count against the H100 limit.
    assert over_limits_with_held(Resources(gpu_milli=2000), 1, None, [A100], [(team, others)]) == []
