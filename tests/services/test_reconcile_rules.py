"""Which exits reconcile treats as "killed from outside" (recover) vs the workload's own,
and what the audit keeps of an orphan it removes."""

from __future__ import annotations

import pytest

from gpuyard.domain.runtime_records import ReplicaObservation, ReplicaState
from gpuyard.services.containers.reconcile import killed_from_outside, orphan_audit_details


def exited(code: int, oom: bool = False) -> ReplicaObservation:
    return ReplicaObservation(
        container_id="c", workload_id="w", replica=0, image="busybox",
        state=ReplicaState.EXITED, running=False, exit_code=code, oom_killed=oom,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("container", "recover"),
    [
        (exited(137), True),
        (exited(143), True),
        (exited(137, oom=True), False),
        (exited(0), False),
        (exited(1), False),
        (exited(3), False),
    ],
    ids=["docker kill", "SIGTERM", "OOM kill is its own failure", "success", "error", "exit 3"],
)
def test_killed_from_outside(container: ReplicaObservation, recover: bool) -> None:
    assert killed_from_outside(container) is recover


def test_an_orphan_in_a_state_gpuyard_does_not_know_is_audited_with_the_real_state() -> None:
    orphan = ReplicaObservation(
        container_id="c", workload_id="w", replica=0, running=False,
        state=ReplicaState.of("hibernating"), state_text="hibernating",
    )  # fmt: skip
    assert orphan.state is ReplicaState.UNKNOWN
    details = orphan_audit_details("h1", orphan)
    assert details == {"handle": "h1", "workload_id": "w", "state": "hibernating"}
    # A runtime without words of its own: the state's name.
    assert orphan_audit_details("h1", exited(0))["state"] == "exited"
