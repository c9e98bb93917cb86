"""GPU inventory: NVML (nvidia-ml-py) first, nvidia-smi as fallback, none when neither works.

The parsers are pure functions over the text the tools print; the tests feed them the real
output of an H100 host (tests/fixtures/gpu_h100/). ``read_nvml`` takes the NVML module as an
argument so the same code runs on the real library and on a fake built from an NVML dump.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal

from gpuyard.agent.models import GpuInfo

MIB = 1024 * 1024
NVIDIA_SMI_TIMEOUT_S = 15.0
#: The fields the fallback asks nvidia-smi for (``--format=csv``, header and units kept, so the
#: parser reads columns by name and is immune to their order).
QUERY_GPU_FIELDS = (
    "index,uuid,name,serial,pci.bus_id,memory.total,memory.used,utilization.gpu,"
    "utilization.memory,temperature.gpu,power.draw,power.limit,mig.mode.current,driver_version"
)
_MISSING = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]"}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

MigMode = Literal["enabled", "disabled"]


@dataclass
class GpuReport:
    """The GPUs found, where from, and why a source failed (kept for the inventory)."""

    gpus: list[GpuInfo] = field(default_factory=list)
    source: Literal["nvml", "nvidia-smi", "none"] = "none"
    driver_version: str | None = None
    error: str | None = None


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value.lower() in _MISSING else value


def _number(value: str | None) -> float | None:
    """``"700.97 W"``, ``"81559 MiB"``, ``"100 %"``, ``"37 C"`` -> the number; N/A -> None."""
    text = _text(value)
    match = _NUMBER.search(text) if text else None
    return float(match.group()) if match else None


def _first_number(*values: str | None) -> float | None:
    numbers = [n for n in map(_number, values) if n is not None]
    return numbers[0] if numbers else None


def _mig(value: str | None) -> MigMode | None:
    text = (_text(value) or "").lower()
    if text == "enabled":
        return "enabled"
    if text == "disabled":
        return "disabled"
    return None


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def parse_query_gpu_csv(text: str) -> tuple[list[GpuInfo], str | None]:
    """Parse ``nvidia-smi --query-gpu=... --format=csv`` (header line and units included).

    Columns are read by name (``memory.total [MiB]`` -> ``memory.total``); reading stops at the
    first blank line or at a second header (the ``--query-compute-apps`` table that may
    follow). Returns the GPUs and the driver version when it was asked for.
    """
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(lines)), skipinitialspace=True))
    if not rows:
        return [], None
    header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in rows[0]]
    if "uuid" not in header:
        raise ValueError("nvidia-smi CSV without a header naming a 'uuid' column")
    gpus: list[GpuInfo] = []
    driver: str | None = None
    for row in rows[1:]:
        if not row or not any(cell.strip() for cell in row) or row[0].strip() == header[0]:
            break
        if len(row) != len(header):
            break  # the next table (compute apps) has other columns
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        driver = _text(cells.get("driver_version")) or driver
        gpus.append(
            GpuInfo(
                index=int(cells["index"]),
                uuid=cells["uuid"],
                name=cells.get("name", ""),
                memory_total_mib=_int(_number(cells.get("memory.total"))) or 0,
                memory_used_mib=_int(_number(cells.get("memory.used"))),
                utilization_gpu_pct=_number(cells.get("utilization.gpu")),
                utilization_memory_pct=_number(cells.get("utilization.memory")),
                temperature_c=_number(cells.get("temperature.gpu")),
                power_draw_w=_number(cells.get("power.draw")),
                power_limit_w=_number(cells.get("power.limit")),
                mig_mode=_mig(cells.get("mig.mode.current")),
                pci_bus_id=_text(cells.get("pci.bus_id")),
                serial=_text(cells.get("serial")),
            )
        )
    return gpus, driver


def parse_nvidia_smi_xml(text: str) -> tuple[list[GpuInfo], str | None]:
    """Parse ``nvidia-smi -q -x``; returns the GPUs (in document order) and the driver version."""
    root = ET.fromstring(text)  # noqa: S314 - local tool output, not untrusted input
    gpus: list[GpuInfo] = []
    for position, gpu in enumerate(root.findall("gpu")):

        def find(path: str, node: ET.Element = gpu) -> str | None:
            found = node.find(path)
            return found.text if found is not None else None

        power = gpu.find("gpu_power_readings")
        if power is None:
            power = gpu.find("power_readings")  # drivers before 530
        draw = limit = None
        if power is not None:
            draw = _first_number(find("instant_power_draw", power), find("power_draw", power))
            limit = _first_number(find("current_power_limit", power), find("power_limit", power))
        gpus.append(
            GpuInfo(
                index=position,  # nvidia-smi numbers GPUs in the order it lists them
                uuid=(find("uuid") or "").strip(),
                name=(find("product_name") or "").strip(),
                memory_total_mib=_int(_number(find("fb_memory_usage/total"))) or 0,
                memory_used_mib=_int(_number(find("fb_memory_usage/used"))),
                utilization_gpu_pct=_number(find("utilization/gpu_util")),
                utilization_memory_pct=_number(find("utilization/memory_util")),
                temperature_c=_number(find("temperature/gpu_temp")),
                power_draw_w=draw,
                power_limit_w=limit,
                mig_mode=_mig(find("mig_mode/current_mig")),
                pci_bus_id=_text(find("pci/pci_bus_id")),
                serial=_text(find("serial")),
            )
        )
    return gpus, _text(root.findtext("driver_version"))


def read_nvml(nvml: Any) -> GpuReport:
    """Read every GPU through an NVML module (``pynvml`` or a stand-in with its functions).

    Readings a device does not support (NVMLError) are None; a failing nvmlInit raises.
    """
    nvml.nvmlInit()
    try:
        driver = _decode(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = _memory(nvml, handle)
            rates = _optional(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
            power_mw = _optional(nvml, nvml.nvmlDeviceGetPowerUsage, handle)
            limit_mw = _optional(nvml, nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
            mig = _optional(nvml, nvml.nvmlDeviceGetMigMode, handle)
            pci = _optional(nvml, nvml.nvmlDeviceGetPciInfo, handle)
            serial = _optional(nvml, nvml.nvmlDeviceGetSerial, handle)
            temperature = _optional(
                nvml, nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU
            )
            gpus.append(
                GpuInfo(
                    index=index,
                    uuid=_decode(nvml.nvmlDeviceGetUUID(handle)),
                    name=_decode(nvml.nvmlDeviceGetName(handle)),
                    memory_total_mib=int(memory.total) // MIB,
                    memory_used_mib=int(memory.used) // MIB,
                    utilization_gpu_pct=None if rates is None else float(rates.gpu),
                    utilization_memory_pct=None if rates is None else float(rates.memory),
                    temperature_c=None if temperature is None else float(temperature),
                    power_draw_w=None if power_mw is None else power_mw / 1000,
                    power_limit_w=None if limit_mw is None else limit_mw / 1000,
                    mig_mode=None if mig is None else ("enabled" if mig[0] else "disabled"),
                    pci_bus_id=None if pci is None else _decode(pci.busId),
                    serial=None if serial is None else _decode(serial),
                )
            )
        return GpuReport(gpus=gpus, source="nvml", driver_version=driver)
    finally:
        nvml.nvmlShutdown()


def _memory(nvml: Any, handle: Any) -> Any:
    """Memory info v2 where the library and driver have it: its ``used`` leaves out the memory
    the driver reserves (480 MiB on an H100), as nvidia-smi does; v1 counts it as used."""
    version = getattr(nvml, "nvmlMemory_v2", None)
    if version is not None:
        try:
            return nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
        except (TypeError, nvml.NVMLError):
            pass
    return nvml.nvmlDeviceGetMemoryInfo(handle)


def _optional(nvml: Any, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except nvml.NVMLError:
        return None


def _decode(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def run_nvidia_smi(binary: str) -> GpuReport:
    """The fallback: one ``--query-gpu`` call, then ``-q -x`` if that query is refused."""
    query = [binary, f"--query-gpu={QUERY_GPU_FIELDS}", "--format=csv"]
    result = subprocess.run(query, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    if result.returncode == 0:
        gpus, driver = parse_query_gpu_csv(result.stdout)
        return GpuReport(gpus=gpus, source="nvidia-smi", driver_version=driver)
    xml = subprocess.run(
        [binary, "-q", "-x"], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S
    )
    if xml.returncode != 0:
        raise RuntimeError((result.stderr or result.stdout or xml.stderr).strip()[:300])
    gpus, driver = parse_nvidia_smi_xml(xml.stdout)
    return GpuReport(gpus=gpus, source="nvidia-smi", driver_version=driver)


def probe_gpus() -> GpuReport:
    """NVML, else nvidia-smi, else no GPUs; the report says why a source failed."""
    errors: list[str] = []
    try:
        import pynvml

        return read_nvml(pynvml)
    except Exception as exc:  # no library, no driver, no device: try the next source
        errors.append(f"NVML: {exc}")
    binary = shutil.which("nvidia-smi")
    if binary is not None:
        try:
            return run_nvidia_smi(binary)
        except (OSError, ValueError, RuntimeError, subprocess.SubprocessError, ET.ParseError) as e:
            errors.append(f"nvidia-smi: {e}")
    else:
        errors.append("nvidia-smi: not installed")
    return GpuReport(error="; ".join(errors))
