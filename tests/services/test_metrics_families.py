"""The fleet's gauges from a reading (pure): reason codes and status classes stay within
fixed sets, and readings a server does not report are absent, never 0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories.metrics import by_label, parse_samples
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.samples import Sample

from gpuyard.domain.usage import GpuReading, UsageReading
from gpuyard.services.metrics.fleet import PENDING_REASONS, FleetMetrics, fleet_families
from gpuyard.services.metrics.instruments import status_class
from gpuyard.store.metrics_figures import GpuFigures, QueueDepth, ServerFigures


class _Families:
    def __init__(self, figures: FleetMetrics) -> None:
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return fleet_families(self.figures)


def _scrape(figures: FleetMetrics) -> dict[str, list[Sample]]:
    return parse_samples(generate_latest(_Families(figures)).decode())


def _server(name: str) -> ServerFigures:
    return ServerFigures(
        name,
        name,
        "c1",
        "docker",
        "online",
        (500, 1000),
        (1024, 4096),
        (0, 0),
        (1000, 2000),
        0,
        None,
    )


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        pytest.param({None: 3}, {"none": 3}, id="never considered"),
        pytest.param({"quota": 2, "backoff": 1}, {"quota": 2, "backoff": 1}, id="scheduler codes"),
        pytest.param({"lost": 1, "resized": 4}, {"lost": 1, "resized": 4}, id="re-queues"),
        pytest.param({"x" * 32: 5, "made-up": 1}, {"other": 6}, id="unknown codes fold"),
    ],
)
def test_pending_reasons_stay_a_fixed_set(
    codes: dict[str | None, int], expected: dict[str, int]
) -> None:
    samples = _scrape(FleetMetrics([], [], {}, {"pending": sum(codes.values())}, codes, [], 0.01))
    pending = by_label(samples, "gpuyard_workloads_pending", "reason")
    assert {k[0] for k in pending} == set(PENDING_REASONS)
    assert {k[0]: v for k, v in pending.items() if v} == expected


def test_unknown_readings_are_absent_and_known_ones_are_ratios_and_bytes() -> None:
    gpus = [
        GpuFigures("a", 0, "GPU-a0", "H100", 81920, 1000, None),
        GpuFigures("a", 1, "GPU-a1", "H100", 81920, 0, None),
        GpuFigures("b", 0, "GPU-b0", "H100", 81920, 500, 37.0),
    ]
    usage = {"a": UsageReading(150.0, None, (GpuReading(0, 80.0, 50.0),))}
    queue = [QueueDepth(None, 3, 2), QueueDepth("vision", 5, 1)]
    figures = FleetMetrics([_server("a"), _server("b")], gpus, usage, {}, {}, queue, 0.01)
    samples = _scrape(figures)
    util = by_label(samples, "gpuyard_gpu_utilization_ratio", "server", "gpu")
    # a/0 from its reading; a/1 reported nothing; b/0 from the probe's stored figure.
    assert util == {("a", "0"): 0.8, ("b", "0"): 0.37}
    used = by_label(samples, "gpuyard_gpu_memory_used_bytes", "server", "gpu")
    assert used == {("a", "0"): 40960 * 1024 * 1024}
    cpu = by_label(samples, "gpuyard_server_cpu_utilization_ratio", "server")
    assert cpu == {("a",): 1.0}  # clamped; b has no reading, a no RAM figure
    assert "gpuyard_server_memory_utilization_ratio" not in samples
    allocated = by_label(samples, "gpuyard_server_allocated", "server", "resource")
    assert allocated[("a", "cpu_cores")] == 0.5
    assert allocated[("a", "ram_bytes")] == 1024 * 1024 * 1024
    assert allocated[("a", "gpus")] == 1.0
    depth = by_label(samples, "gpuyard_queue_depth", "team", "priority")
    assert depth == {("", "3"): 2, ("vision", "5"): 1}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "2xx"),
        (204, "2xx"),
        (308, "3xx"),
        (404, "4xx"),
        (599, "5xx"),
        (99, "other"),
        (600, "other"),
    ],
)
def test_status_classes(status: int, expected: str) -> None:
    assert status_class(status) == expected
