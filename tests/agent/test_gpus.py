"""GPU inventory parsers on the real output of an H100 host (tests/fixtures/gpu_h100/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fixtures.gpu_h100 import (
    linux_nvidia_h100_80g_agent_query_busy_csv,
    linux_nvidia_h100_80g_agent_query_idle_csv,
    linux_nvidia_h100_80g_nvml_busy,
    linux_nvidia_h100_80g_nvml_idle,
    linux_nvidia_h100_80g_query_gpu_busy_csv,
    linux_nvidia_h100_80g_smi_text,
    linux_nvidia_h100_80g_smi_xml,
)

from gpuyard.agent import gpus
from gpuyard.agent.gpus import parse_nvidia_smi_xml, parse_query_gpu_csv, probe_gpus, read_nvml

from .fake_nvml import FakeNvml

H100 = "NVIDIA H100 80GB HBM3"
UUID = "GPU-abcbce51-287a-b5c9-d639-6691a3dc32d4"


def test_query_gpu_csv_with_header_and_units_busy() -> None:
    found, driver = parse_query_gpu_csv(linux_nvidia_h100_80g_query_gpu_busy_csv())

    assert driver == "580.159.04"
    assert len(found) == 1  # the compute-apps table after the GPU rows is not a GPU
    gpu = found[0]
    assert (gpu.index, gpu.uuid, gpu.name) == (0, UUID, H100)
    assert (gpu.memory_total_mib, gpu.memory_used_mib) == (81559, 21491)
    assert (gpu.utilization_gpu_pct, gpu.utilization_memory_pct) == (100.0, 30.0)
    assert gpu.temperature_c == 56.0
    assert (gpu.power_draw_w, gpu.power_limit_w) == (700.97, 700.0)
    assert gpu.mig_mode == "disabled"
    assert (gpu.pci_bus_id, gpu.serial) == ("00000000:00:06.0", "1753024018946")


@pytest.mark.parametrize(
    ("capture", "used", "util", "power"),
    [
        pytest.param(linux_nvidia_h100_80g_agent_query_idle_csv, 0, 0.0, 73.54, id="idle"),
        pytest.param(linux_nvidia_h100_80g_agent_query_busy_csv, 1139, 100.0, 698.36, id="busy"),
    ],
)
def test_the_agents_own_fallback_query_on_a_real_h100(
    capture: object, used: int, util: float, power: float
) -> None:
    (gpu,), driver = parse_query_gpu_csv(capture())  # type: ignore[operator]
    assert driver == "580.159.04"
    assert (gpu.uuid, gpu.name) == ("GPU-64556caf-b340-d059-ba81-68940bcd270b", H100)
    assert (gpu.memory_total_mib, gpu.memory_used_mib) == (81559, used)
    assert (gpu.utilization_gpu_pct, gpu.power_draw_w, gpu.power_limit_w) == (util, power, 700.0)
    assert gpu.mig_mode == "disabled"
    header = capture().splitlines()[0]  # type: ignore[operator]
    assert [c.split(" [")[0] for c in header.split(", ")] == gpus.QUERY_GPU_FIELDS.split(",")


def test_query_gpu_csv_noheader_is_refused_rather_than_misread() -> None:
    row = linux_nvidia_h100_80g_query_gpu_busy_csv().splitlines()[1]
    with pytest.raises(ValueError, match="header"):
        parse_query_gpu_csv(row)


def test_query_gpu_csv_not_available_values_become_none() -> None:
    text = (
        "index, uuid, name, memory.total [MiB], memory.used [MiB], power.draw [W], "
        "mig.mode.current\n"
        "0, GPU-1, Tesla T4, 15360 MiB, [N/A], [Not Supported], [N/A]\n"
    )
    (gpu,), _ = parse_query_gpu_csv(text)
    assert gpu.memory_total_mib == 15360
    assert (gpu.memory_used_mib, gpu.power_draw_w, gpu.mig_mode) == (None, None, None)


def test_nvidia_smi_xml_idle() -> None:
    found, driver = parse_nvidia_smi_xml(linux_nvidia_h100_80g_smi_xml())

    assert driver == "580.159.04"
    (gpu,) = found
    assert (gpu.index, gpu.uuid, gpu.name) == (0, UUID, H100)
    assert (gpu.memory_total_mib, gpu.memory_used_mib) == (81559, 0)
    assert (gpu.utilization_gpu_pct, gpu.utilization_memory_pct) == (0.0, 0.0)
    assert gpu.temperature_c == 37.0
    assert (gpu.power_draw_w, gpu.power_limit_w) == (73.01, 700.0)
    assert gpu.mig_mode == "disabled"
    assert gpu.pci_bus_id == "00000000:00:06.0"


@pytest.mark.parametrize(
    ("dump", "used_mib", "util", "temp", "power_w"),
    [
        pytest.param(linux_nvidia_h100_80g_nvml_idle, 480, 0.0, 37.0, 71.909, id="idle"),
        pytest.param(linux_nvidia_h100_80g_nvml_busy, 21970, 100.0, 55.0, 701.549, id="busy"),
    ],
)
def test_nvml_readings_of_the_h100(
    dump: object, used_mib: int, util: float, temp: float, power_w: float
) -> None:
    nvml = FakeNvml(dump())  # type: ignore[operator]
    report = read_nvml(nvml)

    assert (report.source, report.driver_version) == ("nvml", "580.159.04")
    (gpu,) = report.gpus
    assert (gpu.index, gpu.uuid, gpu.name) == (0, UUID, H100)
    assert gpu.memory_total_mib == 81559  # 85520809984 bytes, as nvidia-smi prints it
    assert gpu.memory_used_mib == used_mib  # NVML v1 "used" counts the 480 MiB reserved
    assert (gpu.utilization_gpu_pct, gpu.temperature_c) == (util, temp)
    assert gpu.power_draw_w == pytest.approx(power_w)
    assert gpu.power_limit_w == 700.0
    assert gpu.mig_mode == "disabled"
    assert (gpu.pci_bus_id, gpu.serial) == ("00000000:00:06.0", "1753024018946")
    assert nvml.initialised == 0  # nvmlShutdown after the read


def test_nvml_memory_v2_leaves_out_what_the_driver_reserves() -> None:
    """With memory info v2, NVML's "used" agrees with nvidia-smi (0 MiB on the idle H100)."""
    nvml = FakeNvml(linux_nvidia_h100_80g_nvml_idle(), reserved_bytes=480 * 1024 * 1024)
    (gpu,) = read_nvml(nvml).gpus
    (from_xml,), _ = parse_nvidia_smi_xml(linux_nvidia_h100_80g_smi_xml())
    assert gpu.memory_used_mib == from_xml.memory_used_mib == 0
    assert gpu.memory_total_mib == 81559


def test_nvml_unsupported_readings_are_none() -> None:
    unsupported = frozenset({"power", "power_limit", "mig", "temperature", "utilization"})
    report = read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_idle(), unsupported=unsupported))
    (gpu,) = report.gpus
    assert gpu.memory_total_mib == 81559
    assert (gpu.power_draw_w, gpu.power_limit_w, gpu.mig_mode) == (None, None, None)
    assert (gpu.temperature_c, gpu.utilization_gpu_pct) == (None, None)


def test_sources_agree_on_the_same_host() -> None:
    """The idle captures of one host: NVML, -q -x and the plain table tell the same story."""
    (from_nvml,) = read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_idle())).gpus
    (from_xml,), _ = parse_nvidia_smi_xml(linux_nvidia_h100_80g_smi_xml())
    for field in ("index", "uuid", "name", "memory_total_mib", "power_limit_w", "mig_mode"):
        assert getattr(from_nvml, field) == getattr(from_xml, field), field
    table = linux_nvidia_h100_80g_smi_text()
    assert f"{from_xml.memory_total_mib}MiB" in table
    assert f"{from_xml.temperature_c:.0f}C" in table
    assert "Disabled" in table  # MIG M.


def _fake_nvidia_smi(directory: Path, output: str, *, query_fails: bool = False) -> None:
    """An nvidia-smi on PATH that prints a real capture (and fails --query-gpu if asked)."""
    (directory / "capture").write_text(output)
    guard = 'case "$1" in --query-gpu=*) echo "Field not valid" >&2; exit 2;; esac\n'
    script = directory / "nvidia-smi"
    script.write_text(
        f"#!/bin/sh\n{guard if query_fails else ''}exec /bin/cat {directory / 'capture'}\n"
    )
    script.chmod(0o755)


def test_probe_falls_back_to_nvidia_smi_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails: no NVML library
    _fake_nvidia_smi(tmp_path, linux_nvidia_h100_80g_query_gpu_busy_csv())
    monkeypatch.setenv("PATH", str(tmp_path))

    report = probe_gpus()

    assert report.source == "nvidia-smi"
    assert [g.uuid for g in report.gpus] == [UUID]
    assert report.driver_version == "580.159.04"


def test_probe_falls_back_to_xml_when_the_query_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    _fake_nvidia_smi(tmp_path, linux_nvidia_h100_80g_smi_xml(), query_fails=True)
    monkeypatch.setenv("PATH", str(tmp_path))

    report = probe_gpus()

    assert (report.source, [g.uuid for g in report.gpus]) == ("nvidia-smi", [UUID])


def test_probe_without_nvml_or_nvidia_smi_reports_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(tmp_path))

    report = probe_gpus()

    assert (report.source, report.gpus) == ("none", [])
    assert report.error is not None
    assert "NVML" in report.error
    assert "nvidia-smi: not installed" in report.error


def test_query_fields_cover_every_column_the_parser_reads() -> None:
    for column in ("index", "uuid", "name", "memory.total", "mig.mode.current"):
        assert column in gpus.QUERY_GPU_FIELDS.split(",")
