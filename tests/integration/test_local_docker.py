"""`gpuyard serve` with a Docker socket registers it as the `local` docker server."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import make_context, make_settings
from support.dockerd import DockerServer

from gpuyard.services.fleet.local_docker import (
    ensure_local_server,
    local_docker_enabled,
    start_local_agent,
)
from gpuyard.services.fleet.servers import list_servers

pytestmark = pytest.mark.slow


def test_the_local_docker_becomes_the_local_server(dockerd: DockerServer, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        None,
        demo=False,
        local_docker="on",
        docker_socket=Path(dockerd.url.removeprefix("unix://")),
    )
    assert local_docker_enabled(settings)
    ctx = make_context(settings)
    ensure_local_server(ctx, start_local_agent(settings))
    ensure_local_server(ctx, start_local_agent(settings))  # a restart: same server, new agent
    servers, count = list_servers(ctx, None, None, 10, 0)
    assert count == 1
    assert servers[0].name == "local"
    assert servers[0].cpu_milli > 0
    assert ctx.agents.client_for("local").healthz()["status"] == "ok"
