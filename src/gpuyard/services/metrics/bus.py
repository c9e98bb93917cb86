"""This process's bus (services/bus) as gauges, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpuyard.services.bus.notices import ChangeBus

STATES = ("connected", "down", "starting", "off")


class BusCollector(Collector):
    """``gpuyard_bus_state{transport,state}``: 1 for the state this process's bus is in,
    0 for the others; ``gpuyard_bus_connected``: 1 while notices flow."""

    def __init__(self, bus: ChangeBus) -> None:
        self._bus = bus

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = self._bus.health()
        state = GaugeMetricFamily(
            "gpuyard_bus_state",
            "1 for the state of this process's change bus (redis, postgres or none)",
            labels=["transport", "state"],
        )
        for name in STATES:
            state.add_metric([health.transport, name], 1 if health.state == name else 0)
        connected = GaugeMetricFamily(
            "gpuyard_bus_connected",
            "1 while this process hears the other processes' notices over its bus",
            labels=["transport"],
        )
        connected.add_metric([health.transport], 1 if health.state == "connected" else 0)
        yield from (state, connected)
