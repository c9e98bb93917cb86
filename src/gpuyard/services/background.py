"""Every background loop of a gpuyard process, assembled in one place.

`gpuyard serve` runs them beside the API (embedded mode); `gpuyard worker` runs them
without it, so that at scale the API and the scheduler do not share one interpreter
(DESIGN.md section 7). Each loop declares its name, interval, jitter and lease: where
leases are on (``services/loops/leases.py``), a loop with a lease ticks in one process of
the deployment at a time, and the database guards keep any overlap correct.
"""

from __future__ import annotations

import time

from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.containers.teardown import run_teardowns
from gpuyard.services.context import ServiceContext
from gpuyard.services.culling.loop import cull_workloads
from gpuyard.services.fleet.health import probe_servers
from gpuyard.services.fleet.host_cleanup import clean_servers
from gpuyard.services.fleet.kube_nodes import sync_kube_nodes
from gpuyard.services.loops.leases import SCHEDULER_LEASE, release_leases
from gpuyard.services.loops.runner import Loop, LoopRunner
from gpuyard.services.pools.tending import tend_pools
from gpuyard.services.routing.loop import publish_routes
from gpuyard.services.scheduling.change_watch import ChangeWatch
from gpuyard.services.scheduling.cluster_leases import release_cluster_leases
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.usage.sampling import sample_usage
from gpuyard.services.workloads.lifecycle import advance_lifecycles

#: Each sleep is the interval +- 20 %, so processes and loops drift apart.
JITTER = 0.2


def build_loops(ctx: ServiceContext) -> list[Loop]:
    """Every background loop of a process: its name, interval, jitter, lease and tick."""
    s = ctx.settings
    loops = [
        # The cycle takes the scheduler's lease itself; a burst of commits (each wakes it)
        # gives one cycle per 0.1 s at most: a cycle has a fixed cost, however few
        # workloads arrived since the last one.
        Loop(
            "scheduler",
            s.scheduler_interval_s,
            jitter=JITTER,
            lease=SCHEDULER_LEASE,
            tick=lambda _fence: run_scheduling_cycle(ctx),
            lease_taken_by_tick=True,
            wakeup=ctx.scheduler_wakeup,
            rest_ratio=1.0,
            min_rest_s=0.1,
        ),
        # Ticks only where the scheduler does (it races the scheduler's apply otherwise).
        Loop(
            "lifecycle",
            1.0,
            jitter=JITTER,
            lease=SCHEDULER_LEASE,
            tick=lambda _fence: advance_lifecycles(ctx),
            lease_taken_by_tick=True,
        ),
        Loop(
            "starter",
            s.starter_interval_s,
            jitter=JITTER,
            lease="starter",
            tick=lambda fence: start_scheduled(ctx, fence),
            wakeup=ctx.starter_wakeup,
        ),
        Loop(
            "health",
            s.health_interval_s,
            jitter=JITTER,
            lease="health",
            tick=lambda _fence: probe_servers(ctx),
        ),
        # Kubernetes clusters' nodes -> servers (a list per cluster and tick).
        Loop(
            "kube-nodes",
            s.kube_sync_interval_s,
            jitter=JITTER,
            lease="kube-nodes",
            tick=lambda _fence: sync_kube_nodes(ctx),
        ),
        Loop(
            "reconcile",
            s.reconcile_interval_s,
            jitter=JITTER,
            lease="reconcile",
            tick=lambda _fence: reconcile_servers(ctx),
            wakeup=ctx.reconcile_wakeup,
        ),
        Loop(
            "cleanup",
            s.cleanup_interval_s,
            jitter=JITTER,
            lease="cleanup",
            tick=lambda fence: run_teardowns(ctx, fence),
        ),
        # Refills warm pools to their target size; relabels their containers.
        Loop(
            "pools",
            s.pool_interval_s,
            jitter=JITTER,
            lease="pools",
            tick=lambda _fence: tend_pools(ctx),
            wakeup=ctx.pool_wakeup,
        ),
        # Idle culling and maximum lifetime (docs/concurrency.md #32): warns, then stops.
        Loop(
            "culling",
            s.culling_interval_s,
            jitter=JITTER,
            lease="culling",
            tick=lambda _fence: cull_workloads(ctx),
        ),
        # Samples every server (no network I/O: docker servers' readings come from the
        # health probes), rolls up closed buckets and prunes old ones.
        Loop(
            "history",
            s.history_sample_interval_s,
            # One tick per sampling slot (``sample_usage`` files by slot), none skipped.
            jitter=0.0,
            aligned=True,
            lease="history",
            tick=lambda _fence: sample_usage(ctx, pause=time.sleep),
        ),
    ]
    # Stopped containers, dangling images, orphaned volumes and files on every docker
    # server (off by default: an operator opts in to removals nobody asked for each time).
    if s.host_cleanup_interval_s > 0:
        loops.append(
            Loop(
                "host-cleanup",
                s.host_cleanup_interval_s,
                jitter=JITTER,
                lease="host-cleanup",
                tick=lambda _fence: clean_servers(ctx),
            )
        )
    # Per-user routing (docs/concurrency.md #33): nginx's config follows the running
    # workloads' ports. Off unless GPUYARD_ROUTING_NGINX_CONF names the file.
    if s.routing_nginx_conf is not None:
        loops.append(
            Loop(
                "routing",
                s.routing_interval_s,
                jitter=JITTER,
                lease="routing",
                tick=lambda _fence: publish_routes(ctx),
            )
        )
    # Other processes' commits, for this process's own scheduler: so every process ticks.
    if s.change_watch_interval_s > 0:
        watch = ChangeWatch(ctx)
        loops.append(
            Loop(
                "change-watch",
                s.change_watch_interval_s,
                jitter=JITTER,
                lease=None,
                tick=lambda _fence: watch(),
            )
        )
    return loops


def start_loops(ctx: ServiceContext) -> LoopRunner:
    """Run the loops in this process, each gated by its lease."""
    runner = LoopRunner(build_loops(ctx), ctx)
    runner.start()
    return runner


def stop_loops(ctx: ServiceContext, runner: LoopRunner) -> None:
    """Stop the loops, then hand their leases over without waiting for them to lapse."""
    runner.stop()
    release_leases(ctx, runner.leases() | {SCHEDULER_LEASE})
    release_cluster_leases(ctx)
