"""The agent's GET /metrics: the host's figures, the GPUs read from a real H100's NVML
dump (tests/fixtures/gpu_h100/), the containers by state from a real dockerd, all parsed
with prometheus_client's parser; the agent's token is required."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from factories.metrics import by_label, parse_samples, value
from fastapi.testclient import TestClient
from fixtures.gpu_h100 import linux_nvidia_h100_80g_nvml_busy, linux_nvidia_h100_80g_nvml_idle
from support.dockerd import DockerServer

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport, read_nvml
from gpuyard.agent.settings import AgentSettings

from .builders import make_spec, make_token
from .conftest import RunningAgent
from .fake_nvml import FakeNvml

TOKEN = make_token()
H100 = "NVIDIA H100 80GB HBM3"
UUID = "GPU-abcbce51-287a-b5c9-d639-6691a3dc32d4"
MIB = 1024 * 1024


def _busy_h100() -> GpuReport:
    return read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_busy()))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """An agent whose Docker does not answer, on the busy H100's NVML readings."""
    settings = AgentSettings(token=TOKEN, name="h100-host", data_dir=tmp_path)  # type: ignore[arg-type]
    nowhere = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    app = create_agent_app(settings, client=nowhere, gpu_probe=_busy_h100)
    with TestClient(app) as test_client:
        yield test_client


def test_the_busy_h100s_readings(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_samples(response.text)

    gpu = {"gpu": "0", "uuid": UUID, "model": H100}
    assert value(samples, "gpuyard_host_gpu_utilization_ratio", **gpu) == 1.0
    assert value(samples, "gpuyard_host_gpu_memory_used_bytes", **gpu) == 21970 * MIB
    assert value(samples, "gpuyard_host_gpu_memory_total_bytes", **gpu) == 81559 * MIB
    assert value(samples, "gpuyard_host_gpu_temperature_celsius", **gpu) == 55.0
    assert value(samples, "gpuyard_host_gpu_power_watts", **gpu) == pytest.approx(701.549)
    assert value(samples, "gpuyard_host_gpu_power_limit_watts", **gpu) == 700.0
    assert by_label(samples, "gpuyard_host_gpu_source", "source") == {
        ("nvml",): 1,
        ("nvidia-smi",): 0,
        ("none",): 0,
    }
    assert value(samples, "gpuyard_host_info", agent="h100-host") == 1
    assert value(samples, "gpuyard_host_cpus") >= 1
    total = value(samples, "gpuyard_host_memory_total_bytes")
    assert 0 < value(samples, "gpuyard_host_memory_available_bytes") <= total
    assert (
        0
        <= value(samples, "gpuyard_host_disk_free_bytes")
        <= value(samples, "gpuyard_host_disk_total_bytes")
    )
    # Docker does not answer: said so, and no container figures are made up.
    assert value(samples, "gpuyard_host_docker_up") == 0
    assert "gpuyard_host_containers" not in samples


def test_readings_a_device_does_not_give_are_absent_not_zero(tmp_path: Path) -> None:
    unsupported = frozenset({"power", "temperature", "utilization"})

    def probe() -> GpuReport:
        return read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_idle(), unsupported=unsupported))

    settings = AgentSettings(token=TOKEN, name="idle", data_dir=tmp_path)  # type: ignore[arg-type]
    nowhere = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    with TestClient(create_agent_app(settings, client=nowhere, gpu_probe=probe)) as client:
        samples = parse_samples(
            client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        )
    for name in (
        "gpuyard_host_gpu_utilization_ratio",
        "gpuyard_host_gpu_temperature_celsius",
        "gpuyard_host_gpu_power_watts",
    ):
        assert name not in samples
    assert value(samples, "gpuyard_host_gpu_memory_used_bytes", uuid=UUID) == 480 * MIB


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-xxxxxxxx", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
    ids=["missing", "wrong", "other-scheme", "longer"],
)
def test_the_agents_token_is_required(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["type"].endswith("/unauthenticated")


def test_containers_by_state_from_a_real_dockerd(
    cpu_host: RunningAgent, dockerd: DockerServer
) -> None:
    with cpu_host.http() as http:
        spec = make_spec(image=dockerd.image, command=["sleep", "60"])
        created = http.post("/v1/containers", json=spec.model_dump(mode="json"))
        assert created.status_code in (200, 201), created.text
        try:
            response = http.get("/metrics")
            assert response.status_code == 200, response.text
            samples = parse_samples(response.text)
            assert value(samples, "gpuyard_host_docker_up") == 1
            states = by_label(samples, "gpuyard_host_containers", "state")
            listed = http.get("/v1/containers").json()["data"]
            assert sum(states.values()) == len(listed)
            running = [c for c in listed if c["state"] == "running"]
            assert states[("running",)] == len(running) >= 1
        finally:
            http.delete(f"/v1/containers/{created.json()['id']}")
