"""Team quota: caps allocated cpu/ram/gpu; placements earlier in the cycle count."""

from __future__ import annotations

from dataclasses import replace

from factories.scheduler import (
    make_pending,
    make_quota,
    make_running,
    make_server,
    make_snapshot,
    pending_of,
    placed_on,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.fairshare import QueueNode
from gpuyard.scheduler.snapshot import SchedulerConfig

CONFIG = SchedulerConfig()


def test_quota_used_up() -> None:
    snapshot = make_snapshot(
        [make_server("s1", gpus=8)],
        quotas=[make_quota("ml", used=Resources(0, 0, 0, 8000), gpu=8)],
    )
    result = schedule_cycle(snapshot, [make_pending("w", gpu=1, team="ml")], CONFIG, now=0)
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.code is PendingCode.QUOTA
    assert pending.reason == "team quota exceeded: gpu 8/8 in use, needs 1"
    assert not result.admitted


def test_placements_in_the_same_cycle_count() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=8)], quotas=[make_quota("ml", gpu=2)])
    pending = [make_pending(f"w{i}", gpu=1, team="ml", submitted_at=i) for i in range(3)]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert [a.workload_id for a in result.admitted] == ["w0", "w1"]
    blocked = pending_of(result, "w2")
    assert blocked is not None
    assert blocked.code is PendingCode.QUOTA
    assert blocked.reason == "team quota exceeded: gpu 2/2 in use, needs 1"


def test_quota_names_the_dimension() -> None:
    snapshot = make_snapshot(
        [make_server("s1")], quotas=[make_quota("web", used=Resources(6000, 0, 0, 0), cpu=8)]
    )
    result = schedule_cycle(snapshot, [make_pending("w", cpu=4, team="web")], CONFIG, now=0)
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.reason == "team quota exceeded: cpu 6/8 in use, needs 4"


def test_non_gang_places_what_the_quota_allows() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=8)], quotas=[make_quota("ml", gpu=2)])
    result = schedule_cycle(
        snapshot, [make_pending("w", gpu=1, team="ml", replicas=3)], CONFIG, now=0
    )
    assert len(placed_on(result, "w")) == 2
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.code is PendingCode.QUOTA
    assert pending.reason.startswith("placed 2 of 3 replicas; team quota exceeded: gpu 2/2")


def test_gang_over_quota_places_nothing() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=8)], quotas=[make_quota("ml", gpu=2)])
    result = schedule_cycle(
        snapshot, [make_pending("w", gpu=1, team="ml", replicas=3, gang=True)], CONFIG, now=0
    )
    assert not result.admitted
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.code is PendingCode.QUOTA
    assert pending.reason == "team quota exceeded: gpu 0/2 in use, needs 3"


def test_other_teams_and_unlimited_dims_are_not_capped() -> None:
    snapshot = make_snapshot(
        [make_server("s1", gpus=8)],
        quotas=[make_quota("ml", used=Resources(0, 0, 0, 8000), gpu=8, cpu=None)],
    )
    pending = [make_pending("ml-cpu", cpu=8, team="ml"), make_pending("web", gpu=1, team="web")]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert {a.workload_id for a in result.admitted} == {"ml-cpu", "web"}


def test_evicted_victims_give_their_team_quota_back() -> None:
    # ml is at its 4-GPU cap; a prio-5 ml job evicts ml's own prio-1 job, then fits the cap.
    running = [make_running("old", "s1", gpus=[0, 1, 2, 3], priority=1, team="ml")]
    snapshot = make_snapshot(
        [make_server("s1", gpus=4)],
        running,
        quotas=[make_quota("ml", used=Resources(0, 0, 0, 4000), gpu=8)],
    )
    result = schedule_cycle(
        snapshot, [make_pending("new", gpu=4, priority=5, team="ml")], CONFIG, now=0
    )
    assert [v.workload_id for a in result.admitted for v in a.victims] == ["old"]


def _tree(dept_cpu: int, teams: dict[str, str]) -> dict[str, QueueNode]:
    """Departments (each capped at ``dept_cpu`` cores) and their teams, unlimited alone."""
    nodes = {
        dept: QueueNode(dept, limit=(dept_cpu * 1000, None, None, None))
        for dept in set(teams.values())
    }
    nodes.update({team: QueueNode(team, parent_id=dept) for team, dept in teams.items()})
    return nodes


def test_a_department_limit_caps_its_teams_together() -> None:
    teams = {"a": "d1", "b": "d1", "c": "d2"}
    snapshot = replace(make_snapshot([make_server("s1", cpu=64)]), teams=_tree(4, teams))
    pending = [
        make_pending(f"{team}{i}", cpu=1, ram_gb=0, team=team, submitted_at=i)
        for i in range(3)
        for team in teams
    ]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    placed = {a.workload_id for a in result.admitted}
    # d1's two teams share 4 cores; d2's one team is capped alone.
    assert sum(1 for w in placed if w[0] in "ab") == 4
    assert sum(1 for w in placed if w[0] == "c") == 3
    refused = [p for p in result.pending if p.workload_id[0] in "ab"]
    assert len(refused) == 2
    assert all(p.code is PendingCode.QUOTA for p in refused)
    assert refused[0].reason == "department quota exceeded: cpu 4/4 in use, needs 1"


def test_a_departments_own_work_counts_its_teams_holdings() -> None:
    """d may hold 4 cores; its team a holds 3. d's own 2-core workload would take the
    department to 5: it waits, although d's own work holds nothing."""
    teams = _tree(4, {"a": "d"})
    running = [make_running("a0", "s1", cpu=3, team="a")]
    snapshot = replace(make_snapshot([make_server("s1", cpu=64)], running), teams=teams)
    result = schedule_cycle(
        snapshot, [make_pending("d0", cpu=2, ram_gb=0, team="d")], CONFIG, now=0
    )
    assert not result.admitted
    [waiting] = result.pending
    assert waiting.code is PendingCode.QUOTA
    assert waiting.reason == "department quota exceeded: cpu 3/4 in use, needs 2"


@settings(max_examples=40, deadline=None)
@given(
    dept_cpu=st.integers(1, 12),
    team_depts=st.lists(st.sampled_from(["d1", "d2", "d3"]), min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=30),
)
def test_no_department_is_placed_past_its_limit(
    dept_cpu: int, team_depts: list[str], sizes: list[int]
) -> None:
    teams = {f"t{i}": dept for i, dept in enumerate(team_depts)}
    snapshot = replace(make_snapshot([make_server("s1", cpu=256)]), teams=_tree(dept_cpu, teams))
    # Departments submit work of their own too: it counts with their teams'.
    owners = [*teams, *sorted(set(team_depts))]
    pending = [
        make_pending(f"w{i}", cpu=size, ram_gb=0, team=owners[i % len(owners)], submitted_at=i)
        for i, size in enumerate(sizes)
    ]
    teams.update({dept: dept for dept in team_depts})
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    by_id = {w.workload_id: w for w in pending}
    held: dict[str, int] = {}
    for admission in result.admitted:
        workload = by_id[admission.workload_id]
        dept = teams[workload.team_id or ""]
        held[dept] = held.get(dept, 0) + workload.resources.cpu_milli
    assert all(cpu <= dept_cpu * 1000 for cpu in held.values())
    # Work refused for quota would not have fitted: its department has less room left.
    for pending_workload in result.pending:
        if pending_workload.code is PendingCode.QUOTA:
            workload = by_id[pending_workload.workload_id]
            room = dept_cpu * 1000 - held.get(teams[workload.team_id or ""], 0)
            assert workload.resources.cpu_milli > room
