"""The fleet and the queue as Prometheus gauges, read from the database at scrape time.

:class:`FleetCollector` is a custom collector on the context's registry: each scrape
calls :func:`read_fleet_metrics`, which reads one snapshot in one short read
transaction (six statements whatever the fleet's size: servers, GPUs, the agents' fresh
readings, workloads by status, the queue by reason and by team and priority), then,
with no transaction open, asks each server's runtime for its usage estimate (the
simulated runtime makes it up from the allocation; docker servers report theirs through
the health probe's reading), as the history sampler does. No loop, no cache: a scrape
costs one read, and grows with the servers and GPUs only (docs/operations.md, "Cost":
about 2.3 s of CPU and 25 MB for 5,000 8-GPU servers, half of it text formatting).

Names follow DCGM's exporter where they mean the same (per-GPU utilisation and memory,
labelled by server, GPU index, UUID and model), in Prometheus base units: ratios 0-1,
bytes, cores, GPUs.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpuyard.domain.errors import NotFound
from gpuyard.domain.usage import GpuLoad, ServerLoad, UsageReading
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.scheduler.decisions import PendingCode
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import report_item_failure
from gpuyard.store import metrics_figures, usage_history
from gpuyard.store.metrics_figures import GpuFigures, QueueDepth, ServerFigures

MIB = 1024 * 1024
#: A reading older than this many probe (or sample) intervals is not reported.
FRESH_INTERVALS = 3
#: Reason codes a pending workload may carry (the scheduler's, and the re-queues');
#: "none" stands for a workload no cycle has considered yet, "other" for anything else,
#: so the ``reason`` label stays a fixed set.
PENDING_REASONS = (*(c.value for c in PendingCode), "lost", "resized", "none", "other")
#: Resources of a server, each named with its unit (``resource`` label values).
RESOURCES = ("cpu_cores", "ram_bytes", "storage_bytes", "gpus")
_TO_UNIT = {"cpu_cores": 1 / 1000, "ram_bytes": MIB, "storage_bytes": MIB, "gpus": 1 / 1000}
_CONTEXT = "metrics"


@dataclass(frozen=True)
class FleetMetrics:
    """One scrape's reading of the fleet and the queue."""

    servers: list[ServerFigures]
    gpus: list[GpuFigures]
    #: Each server's usage: its runtime's estimate, else its agent's fresh reading.
    usage: Mapping[str, UsageReading]
    workloads: Mapping[str, int]
    pending: Mapping[str | None, int]
    queue: list[QueueDepth]
    #: How long the database read took (seconds).
    read_seconds: float


def read_fleet_metrics(ctx: ServiceContext) -> FleetMetrics:
    """Read the fleet and the queue once (one read transaction), then estimate each
    server's usage with no transaction open."""
    s = ctx.settings
    now = ctx.now()
    fresh_since = now - timedelta(
        seconds=FRESH_INTERVALS * max(s.health_interval_s, s.history_sample_interval_s)
    )
    started = time.perf_counter()
    with ctx.db.read() as session:
        servers = metrics_figures.server_figures(session)
        gpus = metrics_figures.gpu_figures(session)
        readings = usage_history.readings_since(session, fresh_since)
        workloads = metrics_figures.workloads_by_status(session)
        pending = metrics_figures.pending_by_reason(session)
        queue = metrics_figures.queue_depths(session)
    read_seconds = time.perf_counter() - started
    gpus_of: dict[str, list[GpuLoad]] = defaultdict(list)
    for gpu in gpus:
        gpus_of[gpu.server_id].append(GpuLoad(gpu.gpu_index, gpu.allocated_milli, gpu.memory_mib))
    usage: dict[str, UsageReading] = {}
    for server in servers:
        reading = _estimate(ctx, server, tuple(gpus_of.get(server.id, ())), now)
        reading = reading or readings.get(server.id)
        if reading is not None:
            usage[server.id] = reading
    return FleetMetrics(servers, gpus, usage, workloads, pending, queue, read_seconds)


def _estimate(
    ctx: ServiceContext, server: ServerFigures, gpus: tuple[GpuLoad, ...], now: datetime
) -> UsageReading | None:
    load = ServerLoad(server.id, _share(server.cpu_milli), _share(server.ram_mib), gpus)
    try:
        return ctx.runtimes.for_kind(server.kind).estimate_usage(load, now)
    except NotFound:  # a kind with no runtime here: usage unknown
        return None
    except Exception as exc:  # this server's figures only; the others are reported
        report_item_failure(_CONTEXT, f"server {server.id}", exc, "usage not estimated")
        return None


def _share(pair: tuple[int, int]) -> float:
    allocated, capacity = pair
    return allocated / capacity if capacity > 0 else 0.0


def _ratio(pct: float | None) -> float | None:
    return None if pct is None else min(1.0, max(0.0, pct / 100))


class FleetCollector(Collector):
    """Gauges of the fleet and the queue, read from the database on each scrape."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # nothing read at registration; names come from collect()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from fleet_families(read_fleet_metrics(self._ctx))


def fleet_families(figures: FleetMetrics) -> Iterator[GaugeMetricFamily]:
    """The gauges of one reading (pure: the tests feed it readings directly)."""
    yield from _server_families(figures)
    yield from _gpu_families(figures)
    yield from _queue_families(figures)
    read = GaugeMetricFamily(
        "gpuyard_metrics_fleet_read_seconds",
        "How long this scrape's read of the fleet and queue took in the database",
    )
    read.add_metric([], figures.read_seconds)
    yield read


def _server_families(figures: FleetMetrics) -> Iterator[GaugeMetricFamily]:
    labels = ["server", "cluster"]
    status = GaugeMetricFamily(
        "gpuyard_server_status",
        "1 for each server's current status (online, offline, draining, maintenance)",
        labels=[*labels, "status"],
    )
    capacity = GaugeMetricFamily(
        "gpuyard_server_capacity",
        "What a server has, per resource (the resource label names its unit)",
        labels=[*labels, "resource"],
    )
    allocated = GaugeMetricFamily(
        "gpuyard_server_allocated",
        "What a server has reserved for workloads, per resource (unit in the label)",
        labels=[*labels, "resource"],
    )
    missed = GaugeMetricFamily(
        "gpuyard_server_missed_probes",
        "Consecutive health probes the server's agent has not answered",
        labels=labels,
    )
    last_seen = GaugeMetricFamily(
        "gpuyard_server_last_seen_timestamp_seconds",
        "When the server's agent last answered a probe (Unix time)",
        labels=labels,
    )
    cpu_used = GaugeMetricFamily(
        "gpuyard_server_cpu_utilization_ratio",
        "Share of the server's CPU in use (reported or, when simulated, estimated)",
        labels=labels,
    )
    ram_used = GaugeMetricFamily(
        "gpuyard_server_memory_utilization_ratio",
        "Share of the server's RAM in use (reported or, when simulated, estimated)",
        labels=labels,
    )
    for server in figures.servers:
        names = [server.name, server.cluster]
        status.add_metric([*names, server.status], 1)
        pairs = (server.cpu_milli, server.ram_mib, server.storage_mib, server.gpu_milli)
        for resource, (used, whole) in zip(RESOURCES, pairs, strict=True):
            capacity.add_metric([*names, resource], whole * _TO_UNIT[resource])
            allocated.add_metric([*names, resource], used * _TO_UNIT[resource])
        missed.add_metric(names, server.missed_probes)
        if server.last_seen_at is not None:
            last_seen.add_metric(names, server.last_seen_at.timestamp())
        usage = figures.usage.get(server.id)
        if usage is not None:
            for family, pct in ((cpu_used, usage.cpu_used_pct), (ram_used, usage.ram_used_pct)):
                ratio = _ratio(pct)
                if ratio is not None:
                    family.add_metric(names, ratio)
    yield from (status, capacity, allocated, missed, last_seen, cpu_used, ram_used)


def _gpu_families(figures: FleetMetrics) -> Iterator[GaugeMetricFamily]:
    labels = ["server", "gpu", "uuid", "model"]
    utilization = GaugeMetricFamily(
        "gpuyard_gpu_utilization_ratio",
        "Share of time the GPU was busy (DCGM_FI_DEV_GPU_UTIL / 100)",
        labels=labels,
    )
    memory_used = GaugeMetricFamily(
        "gpuyard_gpu_memory_used_bytes",
        "GPU memory in use (DCGM_FI_DEV_FB_USED, in bytes)",
        labels=labels,
    )
    memory_total = GaugeMetricFamily(
        "gpuyard_gpu_memory_total_bytes", "GPU memory of the device, in bytes", labels=labels
    )
    allocated = GaugeMetricFamily(
        "gpuyard_gpu_allocated_ratio",
        "Share of the GPU reserved for workloads (1 = a whole GPU)",
        labels=labels,
    )
    names = {s.id: s.name for s in figures.servers}
    readings = {
        (server_id, g.index): g for server_id, usage in figures.usage.items() for g in usage.gpus
    }
    for gpu in figures.gpus:
        values = [names.get(gpu.server_id, gpu.server_id), str(gpu.gpu_index), gpu.uuid, gpu.model]
        memory_total.add_metric(values, gpu.memory_mib * MIB)
        allocated.add_metric(values, gpu.allocated_milli / 1000)
        reading = readings.get((gpu.server_id, gpu.gpu_index))
        util = _ratio(reading.utilization_pct if reading else gpu.utilization_pct)
        if util is not None:
            utilization.add_metric(values, util)
        used = _ratio(reading.memory_used_pct) if reading else None
        if used is not None:
            memory_used.add_metric(values, round(used * gpu.memory_mib * MIB))
    yield from (utilization, memory_used, memory_total, allocated)


def _queue_families(figures: FleetMetrics) -> Iterator[GaugeMetricFamily]:
    workloads = GaugeMetricFamily(
        "gpuyard_workloads", "Workloads in each status", labels=["status"]
    )
    for status in WorkloadStatus:
        workloads.add_metric([status.value], figures.workloads.get(status.value, 0))
    pending = GaugeMetricFamily(
        "gpuyard_workloads_pending",
        "Pending workloads by why they wait (the scheduler's reason code)",
        labels=["reason"],
    )
    by_reason = dict.fromkeys(PENDING_REASONS, 0)
    for code, count in figures.pending.items():
        key = "none" if code is None else code if code in by_reason else "other"
        by_reason[key] += count
    for reason, count in by_reason.items():
        pending.add_metric([reason], count)
    depth = GaugeMetricFamily(
        "gpuyard_queue_depth",
        'Pending workloads per team ("" without one) and priority',
        labels=["team", "priority"],
    )
    for entry in sorted(figures.queue, key=lambda q: (q.team or "", q.priority)):
        depth.add_metric([entry.team or "", str(entry.priority)], entry.workloads)
    yield from (workloads, pending, depth)
