"""Queue order: priority, dominant share between teams, submit time, id."""

from __future__ import annotations

import pytest
from factories.scheduler import make_pending, make_quota, make_snapshot

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.queue import dominant_share, order_queue
from gpuyard.scheduler.snapshot import PendingWorkload, SchedulerConfig, TeamQuota

QUOTAS = [
    # ml uses 6 of 8 GPUs (0.75); web uses 10 of 40 cores (0.25) and 1 of 8 GPUs.
    make_quota("ml", used=Resources(4000, 0, 0, 6000), cpu=40, gpu=8),
    make_quota("web", used=Resources(10000, 0, 0, 1000), cpu=40, gpu=8),
]

ORDER = [
    (
        "higher priority first, even if submitted later",
        [
            make_pending("low", priority=1, submitted_at=1),
            make_pending("high", priority=5, submitted_at=9),
        ],
        ["high", "low"],
    ),
    (
        "same priority: earlier submit first",
        [make_pending("late", submitted_at=9), make_pending("early", submitted_at=1)],
        ["early", "late"],
    ),
    (
        "same priority: the team with the lower dominant share first, despite submit time",
        [
            make_pending("ml-1", team="ml", submitted_at=1),
            make_pending("web-1", team="web", submitted_at=5),
        ],
        ["web-1", "ml-1"],
    ),
    (
        "dominant share does not beat priority",
        [
            make_pending("web-1", team="web", priority=2),
            make_pending("ml-1", team="ml", priority=3),
        ],
        ["ml-1", "web-1"],
    ),
    (
        "no team / no quota counts as share 0",
        [
            make_pending("ml-1", team="ml", submitted_at=1),
            make_pending("solo", submitted_at=5),
            make_pending("other", team="unknown", submitted_at=6),
        ],
        ["solo", "other", "ml-1"],
    ),
    (
        "within one team: submit time",
        [
            make_pending("ml-2", team="ml", submitted_at=2),
            make_pending("ml-1", team="ml", submitted_at=1),
        ],
        ["ml-1", "ml-2"],
    ),
    (
        "full tie: workload id",
        [make_pending("b"), make_pending("a"), make_pending("c")],
        ["a", "b", "c"],
    ),
]


@pytest.mark.parametrize(("pending", "expected"), [c[1:] for c in ORDER], ids=[c[0] for c in ORDER])
def test_queue_order(pending: list[PendingWorkload], expected: list[str]) -> None:
    quotas = {q.team_id: q for q in QUOTAS}
    assert [w.workload_id for w in order_queue(pending, quotas)] == expected
    # The cycle reports the same order.
    result = schedule_cycle(make_snapshot([], quotas=QUOTAS), pending, SchedulerConfig(), now=0)
    assert list(result.order) == expected


@pytest.mark.parametrize(
    ("quota", "share"),
    [
        (None, 0.0),
        (make_quota("t", used=Resources(4000, 0, 0, 2000), cpu=8, gpu=8), 0.5),
        (make_quota("t", used=Resources(4000, 2048, 0, 2000), ram_gb=4), 0.5),
        (make_quota("t", used=Resources(0, 0, 0, 0), gpu=0), 0.0),
        (make_quota("t", used=Resources(0, 0, 0, 1000), gpu=0), float("inf")),
        (make_quota("t", used=Resources(1000, 0, 0, 0)), 0.0),
    ],
    ids=[
        "no quota",
        "max over dims",
        "only limited dims",
        "zero limit unused",
        "zero limit used",
        "unlimited",
    ],
)
def test_dominant_share(quota: TeamQuota | None, share: float) -> None:
    assert dominant_share(quota) == share
