"""S9's replica of Kueue's baseline: its layout is Kueue's, and its simulation keeps the quota.

The figures themselves (times) are never asserted; what is asserted is what makes them
comparable: the counts, quotas, priorities and arrival pattern of Kueue's generator config,
every workload admitted, no department above its cohort's quota, and no makespan below the
bound the quota alone sets.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.scenarios.s9_kueue import CLASSES, FULL, TICK_S, S9Config, _layout, simulate


def test_the_full_size_is_kueues_baseline() -> None:
    nodes, jobs = _layout(FULL)
    assert len(jobs) == 15_000
    departments = [n for n in nodes.values() if n.parent_id is None]
    teams = [n for n in nodes.values() if n.parent_id is not None]
    assert len(departments) == 5
    assert len(teams) == 30
    assert all(d.limit[0] == d.guarantee.cpu_milli == 120_000 for d in departments)
    assert all(t.guarantee.cpu_milli == 20_000 and t.limit[0] == 120_000 for t in teams)
    per_class = Counter(j.cls.name for j in jobs)
    assert per_class == {"small": 10_500, "medium": 3_000, "large": 1_500}
    # Creation order: by time, and every stream ends where the generator's does.
    assert [j.created for j in jobs] == sorted(j.created for j in jobs)
    last = {c.name: max(j.created for j in jobs if j.cls is c) * TICK_S for c in CLASSES}
    assert last == {"small": 35.0, "medium": 50.0, "large": 60.0}
    # Kueue's priority order (large > medium > small) survives the mapping.
    assert sorted(CLASSES, key=lambda c: c.kueue_priority) == sorted(
        CLASSES, key=lambda c: c.priority
    )


@settings(max_examples=8, deadline=None)
@given(queues=st.integers(1, 4), divisor=st.sampled_from([25, 50, 70]))
def test_every_workload_is_admitted_within_the_quota(queues: int, divisor: int) -> None:
    cfg = S9Config(1, queues=queues, count_divisor=divisor)
    figures = simulate(cfg)
    assert figures["admitted"] == figures["workloads"] > 0
    assert 0 < figures["peak_department_cpu"] <= queues * 20
    # No schedule beats the quota: all cpu-seconds of work over the cohort's cpu.
    assert figures["wall_to_last_finish_s"] >= figures["quota_bound_s"] - 1e-9
    assert figures["wall_to_last_finish_s"] >= figures["wall_to_last_admission_s"]
