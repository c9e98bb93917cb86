"""The workload state machine allows exactly the documented transitions."""

from __future__ import annotations

import itertools

import pytest

from gpuyard.domain.errors import InvalidTransition
from gpuyard.domain.workload_state import (
    ALLOWED_TRANSITIONS,
    HOLDS_RESOURCES,
    TERMINAL,
    WorkloadStatus,
    check_transition,
)

S = WorkloadStatus

HAPPY_PATH = [S.PENDING, S.SCHEDULED, S.STARTING, S.RUNNING, S.SUCCEEDED]


def test_happy_path_is_allowed() -> None:
    for current, target in itertools.pairwise(HAPPY_PATH):
        check_transition(current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_statuses_never_move(terminal: WorkloadStatus) -> None:
    for target in WorkloadStatus:
        with pytest.raises(InvalidTransition):
            check_transition(terminal, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.RUNNING),  # must be reserved first
        (S.PENDING, S.PREEMPTED),  # holds nothing to evict
        (S.PREEMPTED, S.RUNNING),  # goes back through the queue
        (S.PENDING, S.SUCCEEDED),
    ],
    ids=["pending->running", "pending->preempted", "preempted->running", "pending->succeeded"],
)
def test_forbidden_transitions_raise(current: WorkloadStatus, target: WorkloadStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"{current.value} workload cannot become"):
        check_transition(current, target)


def test_preempted_and_lost_return_to_the_queue() -> None:
    check_transition(S.RUNNING, S.PREEMPTED)
    check_transition(S.PREEMPTED, S.PENDING)
    check_transition(S.RUNNING, S.LOST)
    check_transition(S.LOST, S.PENDING)


def test_only_reserved_statuses_can_be_preempted() -> None:
    preemptable_from = {s for s, targets in ALLOWED_TRANSITIONS.items() if S.PREEMPTED in targets}
    assert preemptable_from == set(HOLDS_RESOURCES)
