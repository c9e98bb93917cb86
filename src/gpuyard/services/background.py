"""Every background loop of a gpuyard process, assembled in one place.

`gpuyard serve` runs them beside the API (embedded mode); `gpuyard worker` runs them
without it, so that at scale the API and the scheduler do not share one interpreter
(DESIGN.md section 7). The database guards keep several processes running them correct.
"""

from __future__ import annotations

from gpuyard.services.change_watch import ChangeWatch
from gpuyard.services.context import ServiceContext
from gpuyard.services.health import probe_servers
from gpuyard.services.lifecycle import advance_lifecycles
from gpuyard.services.loops import Loop, LoopRunner
from gpuyard.services.reconcile import reconcile_servers
from gpuyard.services.scheduler_lease import give_up_scheduler_lease
from gpuyard.services.scheduling import run_scheduling_cycle
from gpuyard.services.starter import start_scheduled
from gpuyard.services.teardown import run_teardowns


def build_loops(ctx: ServiceContext) -> list[Loop]:
    """Every background loop of a process, with its interval (jitter +-20 %)."""
    s = ctx.settings
    # A burst of commits (each wakes the scheduler) gives one cycle per 0.1 s at most: a
    # cycle has a fixed cost, however few workloads arrived since the last one.
    scheduler = Loop(
        "scheduler",
        s.scheduler_interval_s,
        lambda: run_scheduling_cycle(ctx),
        rest_ratio=1.0,
        min_rest_s=0.1,
    )
    scheduler.wakeup = ctx.scheduler_wakeup
    starter = Loop("starter", s.starter_interval_s, lambda: start_scheduled(ctx))
    starter.wakeup = ctx.starter_wakeup
    reconcile = Loop("reconcile", s.reconcile_interval_s, lambda: reconcile_servers(ctx))
    reconcile.wakeup = ctx.reconcile_wakeup
    loops = [
        scheduler,
        Loop("lifecycle", 1.0, lambda: advance_lifecycles(ctx)),
        starter,
        Loop("health", s.health_interval_s, lambda: probe_servers(ctx)),
        reconcile,
        Loop("cleanup", s.cleanup_interval_s, lambda: run_teardowns(ctx)),
    ]
    if s.change_watch_interval_s > 0:  # other processes' commits (services/change_watch.py)
        loops.append(Loop("change-watch", s.change_watch_interval_s, ChangeWatch(ctx)))
    return loops


def stop_loops(ctx: ServiceContext, runner: LoopRunner) -> None:
    """Stop the loops, then hand the scheduler lease over without waiting for it to lapse."""
    runner.stop()
    give_up_scheduler_lease(ctx)
