"""A stand-in for the ``pynvml`` module that answers from an NVML dump (real H100 readings).

It has the functions ``gpuyard.agent.gpus.read_nvml`` calls, with the real library's return
shapes: structs with attributes, char arrays as bytes, NVMLError for unsupported readings.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class NVMLError(Exception):
    """Like pynvml.NVMLError (NVML_ERROR_NOT_SUPPORTED and friends)."""


class FakeNvml:
    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError

    def __init__(
        self,
        dump: dict[str, Any],
        *,
        unsupported: frozenset[str] = frozenset(),
        reserved_bytes: int | None = None,
    ) -> None:
        """``reserved_bytes``: also answer memory info v2 (``used`` without the reserved part),
        like nvidia-ml-py >= 12.535 on a recent driver; without it, only v1 exists."""
        self._dump = dump
        self._unsupported = unsupported
        self._reserved = reserved_bytes
        if reserved_bytes is not None:
            self.nvmlMemory_v2 = 0x02000028
        self.initialised = 0

    def _reading(self, name: str, value: Any) -> Any:
        if name in self._unsupported:
            raise NVMLError(f"{name}: Not Supported")
        return value

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self._dump["driver"])

    def nvmlDeviceGetCount(self) -> int:
        return int(self._dump["count"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        device: dict[str, Any] = self._dump["devices"][index]
        return device

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> str:
        return str(handle["name"])

    def nvmlDeviceGetUUID(self, handle: dict[str, Any]) -> str:
        return str(handle["uuid"])

    def nvmlDeviceGetSerial(self, handle: dict[str, Any]) -> str:
        return str(self._reading("serial", handle["serial"]))

    def nvmlDeviceGetPciInfo(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(busId=self._reading("pci", handle["pci_bus_id"].encode()))

    def nvmlDeviceGetMemoryInfo(
        self, handle: dict[str, Any], version: int | None = None
    ) -> SimpleNamespace:
        memory = dict(handle["memory"])
        if version is None:
            return SimpleNamespace(**memory)
        if self._reserved is None:
            raise NVMLError("nvmlDeviceGetMemoryInfo_v2: Function Not Found")
        memory["used"] -= self._reserved
        return SimpleNamespace(**memory, reserved=self._reserved, version=version)

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**self._reading("utilization", handle["utilization"]))

    def nvmlDeviceGetTemperature(self, handle: dict[str, Any], sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return int(self._reading("temperature", handle["temperature_c"]))

    def nvmlDeviceGetPowerUsage(self, handle: dict[str, Any]) -> int:
        return int(self._reading("power", handle["power_mw"]))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: dict[str, Any]) -> int:
        return int(self._reading("power_limit", handle["power_limit_mw"]))

    def nvmlDeviceGetMigMode(self, handle: dict[str, Any]) -> tuple[int, int]:
        current, pending = self._reading("mig", handle["mig_mode"])
        return int(current), int(pending)
