"""The change watch wakes this process's scheduler for commits made by another process."""

from __future__ import annotations

from factories.app import admin_caller, make_context

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.change_watch import ChangeWatch
from gpuyard.services.workloads.submission import create_workload


def test_another_process_commit_wakes_the_scheduler(clock_ctx: ServiceContext) -> None:
    watch = ChangeWatch(clock_ctx)
    assert watch() is False  # the first read only sets the baseline
    assert watch() is False  # nothing happened
    clock_ctx.scheduler_wakeup.wait(0)  # clear any earlier hint
    other = make_context(clock_ctx.settings)  # another process on the same database
    try:
        create_workload(other, admin_caller(other), WorkloadCreate(image="busybox"))
    finally:
        other.db.dispose()
    assert clock_ctx.scheduler_wakeup.wait(0) is False  # nobody told this process...
    assert watch() is True  # ...until the watch read the database
    assert clock_ctx.scheduler_wakeup.wait(0) is True
    assert watch() is False
