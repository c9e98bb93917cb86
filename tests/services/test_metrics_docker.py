"""The control plane's metrics over real agents on the session's dockerd: the health
loop's probes are counted by result and timed, and a docker server's GPU figures come
from its agent's probe (a real H100's NVML readings), parsed from the rendered text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent.fake_nvml import FakeNvml
from factories.app import make_context, make_settings
from factories.docker_fleet import docker_fleet
from factories.metrics import by_label, parse_samples, value
from fixtures.gpu_h100 import linux_nvidia_h100_80g_nvml_busy
from sqlalchemy import update
from support.dockerd import DockerServer

from gpuyard.agent.gpus import GpuReport, read_nvml
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.health import probe_servers
from gpuyard.services.metrics.exposition import render_metrics
from gpuyard.store.fleet_tables import ServerRow

MIB = 1024 * 1024
H100_UUID = "GPU-abcbce51-287a-b5c9-d639-6691a3dc32d4"

pytestmark = pytest.mark.integration


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """No demo servers: the docker fleet is the whole fleet."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    context = make_context(make_settings(tmp_path / "data", url, demo=False))
    yield context
    context.db.dispose()


def _busy_h100() -> GpuReport:
    return read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_busy()))


def test_probes_by_result_and_a_docker_servers_gpu_from_its_agent(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a", "host-b"], gpu_probe=_busy_h100) as fleet:
        with ctx.db.write() as session:  # host-b's token is one no agent accepts
            session.execute(
                update(ServerRow)
                .where(ServerRow.id == fleet.servers["host-b"])
                .values(agent_token_enc=ctx.secret_box.encrypt("not-the-agents-token-0000"))
            )
        for _ in range(2):
            probe_servers(ctx)
        samples = parse_samples(render_metrics(ctx).decode())

    assert value(samples, "gpuyard_agent_probes_total", result="success") == 2
    assert value(samples, "gpuyard_agent_probes_total", result="failure") == 2
    assert value(samples, "gpuyard_agent_probe_duration_seconds_count") == 4
    missed = by_label(samples, "gpuyard_server_missed_probes", "server")
    assert missed == {("host-a",): 0, ("host-b",): 2}
    seen = by_label(samples, "gpuyard_server_last_seen_timestamp_seconds", "server")
    assert seen[("host-a",)] > seen[("host-b",)]  # host-b answered only when registered
    gpu = {"server": "host-a", "gpu": "0", "uuid": H100_UUID}
    assert value(samples, "gpuyard_gpu_utilization_ratio", **gpu) == 1.0  # the busy H100
    memory = value(samples, "gpuyard_gpu_memory_used_bytes", **gpu)
    assert memory == pytest.approx(21970 * MIB, rel=0.01)  # NVML's "used" of the busy H100
