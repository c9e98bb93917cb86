"""This process's counters and histograms, in one registry per service context.

Counters and histograms are process-local (each API or worker process counts what it
did, and Prometheus adds them up across ``instance`` labels); the fleet's and the
queue's gauges are read from the database at scrape time (``services/metrics/fleet.py``).
One registry per :class:`~gpuyard.services.context.ServiceContext` rather than
prometheus_client's global one, so two contexts in one process (the tests) never mix
their counts. Label values are bounded: route templates, status classes, fixed results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from gpuyard.services.scheduling.cycle import CycleStats

#: A scheduling cycle takes ~1 ms idle and up to seconds at 5,000 servers.
CYCLE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: An agent answers its probe in milliseconds; the client gives up after seconds.
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: The methods kept as they are in the ``method`` label; any other is "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The ``route`` label of a request no route matched (its raw path is never a label).
UNMATCHED_ROUTE = "<unmatched>"


def status_class(status: int) -> str:
    """200 -> "2xx"; anything outside 100-599 -> "other"."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class ProcessMetrics:
    """The instruments this process updates as it works, and the registry that renders
    them (plus any collector registered on it, such as the fleet's)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.cycle_seconds = Histogram(
            "gpuyard_scheduler_cycle_duration_seconds",
            "Time one scheduling cycle took (plan, apply, record reasons)",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.considered = Counter(
            "gpuyard_scheduler_considered_workloads",
            "Pending workloads the scheduling cycles of this process considered",
            registry=r,
        )
        self.placements = Counter(
            "gpuyard_scheduler_placements",
            "Workloads this process's scheduling cycles placed (admissions applied)",
            registry=r,
        )
        self.preemptions = Counter(
            "gpuyard_scheduler_preemptions",
            "Running workloads this process's scheduling cycles evicted for a preemptor",
            registry=r,
        )
        self.conflicts = Counter(
            "gpuyard_scheduler_conflicts",
            "Decisions that went stale (another decider moved first) and were retried",
            registry=r,
        )
        self.probes = Counter(
            "gpuyard_agent_probes",
            "Health probes of servers' agents by this process, by result",
            ["result"],
            registry=r,
        )
        self.probe_seconds = Histogram(
            "gpuyard_agent_probe_duration_seconds",
            "Time an agent's health probe took, answered or not",
            buckets=PROBE_BUCKETS,
            registry=r,
        )
        self.http_seconds = Histogram(
            "gpuyard_http_request_duration_seconds",
            "Time from a request's arrival to its response's headers, by route template",
            ["method", "route", "status_class"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        for result in ("success", "failure"):
            self.probes.labels(result)  # both series exist from the start, at 0

    def record_cycle(self, stats: CycleStats) -> None:
        """Count one scheduling cycle that ran (held the lease)."""
        self.cycle_seconds.observe(stats.seconds)
        self.considered.inc(stats.considered)
        self.placements.inc(stats.admitted)
        self.preemptions.inc(stats.preempted)
        self.conflicts.inc(stats.conflicts)

    def record_probe(self, answered: bool, seconds: float) -> None:
        self.probes.labels("success" if answered else "failure").inc()
        self.probe_seconds.observe(seconds)

    def record_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        self.http_seconds.labels(method, route, status_class(status)).observe(seconds)

    def render(self) -> bytes:
        """Everything in the registry, in the Prometheus text format (0.0.4)."""
        return generate_latest(self.registry)
