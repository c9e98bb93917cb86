"""The agent's host as Prometheus gauges (GET /metrics on the agent, behind its token).

Read at scrape time from the same sources as the inventory (psutil; NVML, else
nvidia-smi, through the agent's GPU cache) plus this agent's containers by state. Every
name starts ``gpuyard_host_``; the per-GPU ones (``gpuyard_host_gpu_*``) mirror the
control plane's ``gpuyard_gpu_*`` (DCGM-like, ratios and bytes) plus the temperature and
power NVML reports, under their own names so a query over the fleet's GPUs never mixes
in the agents' series."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import generate_latest

from gpuyard.agent.models import ContainerInfo, Inventory

MIB = 1024 * 1024
#: Docker's container states: each is a series, 0 when no container is in it.
CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


@dataclass(frozen=True)
class HostReading:
    """One scrape's reading: the inventory, and the containers (None: Docker failed)."""

    inventory: Inventory
    containers: list[ContainerInfo] | None


class _Reading:
    """A collector over one reading (generate_latest takes anything with ``collect``)."""

    def __init__(self, reading: HostReading) -> None:
        self._reading = reading

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        return host_families(self._reading)


def render_host_metrics(reading: HostReading) -> bytes:
    """The reading in the Prometheus text format."""
    return generate_latest(_Reading(reading))


def _gauge(name: str, help_text: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=list(labels))


def host_families(reading: HostReading) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
    """The gauges of one reading (pure: the tests feed it fixtures)."""
    inv = reading.inventory
    info = InfoMetricFamily(
        "gpuyard_host", "The agent and its host", labels=["agent", "hostname", "version"]
    )
    info.add_metric([inv.agent_name, inv.hostname, inv.agent_version], {})
    yield info
    cpus = _gauge("gpuyard_host_cpus", "Logical CPUs of the host")
    cpus.add_metric([], inv.cpu_count)
    yield cpus
    if inv.cpu_percent is not None:
        cpu = _gauge("gpuyard_host_cpu_utilization_ratio", "Share of the host's CPU in use")
        cpu.add_metric([], min(1.0, max(0.0, inv.cpu_percent / 100)))
        yield cpu
    for name, help_text, mib in (
        ("gpuyard_host_memory_total_bytes", "RAM of the host", inv.ram_total_mib),
        ("gpuyard_host_memory_available_bytes", "RAM available", inv.ram_available_mib),
        ("gpuyard_host_disk_total_bytes", "Size of the data dir's filesystem", inv.disk_total_mib),
        ("gpuyard_host_disk_free_bytes", "Free space of that filesystem", inv.disk_free_mib),
    ):
        family = _gauge(name, help_text)
        family.add_metric([], mib * MIB)
        yield family
    yield from _gpu_families(inv)
    yield from _container_families(reading.containers, inv)


def _gpu_families(inv: Inventory) -> Iterator[GaugeMetricFamily]:
    labels = ["gpu", "uuid", "model"]
    source = _gauge(
        "gpuyard_host_gpu_source",
        "1 for where the GPU readings come from (nvml, nvidia-smi, none)",
        ["source"],
    )
    for name in ("nvml", "nvidia-smi", "none"):
        source.add_metric([name], 1 if inv.gpu_source == name else 0)
    yield source
    families = {
        "utilization": _gauge(
            "gpuyard_host_gpu_utilization_ratio",
            "Share of time the GPU was busy (DCGM_FI_DEV_GPU_UTIL / 100)",
            labels,
        ),
        "memory_used": _gauge(
            "gpuyard_host_gpu_memory_used_bytes", "GPU memory in use (DCGM_FI_DEV_FB_USED)", labels
        ),
        "memory_total": _gauge("gpuyard_host_gpu_memory_total_bytes", "GPU memory", labels),
        "temperature": _gauge(
            "gpuyard_host_gpu_temperature_celsius", "GPU temperature (DCGM_FI_DEV_GPU_TEMP)", labels
        ),
        "power": _gauge(
            "gpuyard_host_gpu_power_watts", "Power drawn (DCGM_FI_DEV_POWER_USAGE)", labels
        ),
        "power_limit": _gauge("gpuyard_host_gpu_power_limit_watts", "Enforced power limit", labels),
    }
    for gpu in inv.gpus:
        values = [str(gpu.index), gpu.uuid, gpu.name]
        readings = {
            "utilization": None
            if gpu.utilization_gpu_pct is None
            else min(1.0, max(0.0, gpu.utilization_gpu_pct / 100)),
            "memory_used": None if gpu.memory_used_mib is None else gpu.memory_used_mib * MIB,
            "memory_total": gpu.memory_total_mib * MIB,
            "temperature": gpu.temperature_c,
            "power": gpu.power_draw_w,
            "power_limit": gpu.power_limit_w,
        }
        for key, reading in readings.items():
            if reading is not None:  # a reading the device does not give is absent, not 0
                families[key].add_metric(values, reading)
    yield from families.values()


def _container_families(
    containers: list[ContainerInfo] | None, inv: Inventory
) -> Iterator[GaugeMetricFamily]:
    up = _gauge("gpuyard_host_docker_up", "1 when the Docker daemon answered this scrape")
    up.add_metric([], 1 if containers is not None and inv.docker is not None else 0)
    yield up
    if containers is None:
        return
    by_state = _gauge(
        "gpuyard_host_containers", "This agent's gpuyard containers by Docker state", ["state"]
    )
    counts = Counter(c.state if c.state in CONTAINER_STATES else "other" for c in containers)
    for state in (*CONTAINER_STATES, "other"):
        by_state.add_metric([state], counts.get(state, 0))
    yield by_state
