"""A docker workload's logs followed in the browser: a real agent (in this process, over
the session's throwaway dockerd) registered in the test server, a container that prints a
line a second, and the Logs tab showing each line as it is printed (one response that
stays open, GET /logs?follow=true), not when the page asks again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from fastapi import FastAPI
from integration.cluster import Served
from playwright.sync_api import Page, expect
from support.dockerd import DockerServer

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.settings import AgentSettings
from web.conftest import LiveServer
from web.pages import WorkloadDetailPage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

LINES = 8


@dataclass
class DockerCluster:
    id: str
    name: str
    image: str


def _no_gpus() -> GpuReport:
    return GpuReport(gpus=[], source="none")


@pytest.fixture(scope="module")
def docker_cluster(
    dockerd: DockerServer, live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerCluster]:
    suffix = uuid.uuid4().hex[:6]
    agent_name = f"web-agent-{suffix}"
    token = f"token-{suffix}-0123456789abcdef"
    client = docker.DockerClient(base_url=dockerd.url, timeout=60)
    settings = AgentSettings(
        token=token,
        name=agent_name,
        docker_host=dockerd.url,
        data_dir=Path(tmp_path_factory.mktemp("agent")),
    )

    def make_agent() -> FastAPI:
        return create_agent_app(settings, client=client, gpu_probe=_no_gpus)

    agent = Served(make_agent)
    agent.start()
    try:
        cluster = live_server.api(
            "POST", "/clusters", json={"name": f"docker-{suffix}", "kind": "docker"}
        )
        live_server.api(
            "POST",
            "/servers",
            json={
                "name": f"dock-{suffix}",
                "cluster_id": cluster["id"],
                "agent_url": agent.url,
                "agent_token": token,
                "host_ports": "23000-23009",
            },
        )
        yield DockerCluster(cluster["id"], cluster["name"], dockerd.image)
        for workload in live_server.api("GET", "/workloads", params={"cluster_id": cluster["id"]})[
            "data"
        ]:
            live_server.api("DELETE", f"/workloads/{workload['id']}")
    finally:
        agent.stop()
        for container in client.containers.list(
            all=True, filters={"label": f"gpuyard.agent={agent_name}"}, ignore_removed=True
        ):
            container.remove(force=True)
        client.close()


def test_logs_follow_a_running_container(
    admin_page: Page, live_server: LiveServer, docker_cluster: DockerCluster
) -> None:
    script = f"for i in $(seq 1 {LINES}); do echo tick-$i; sleep 1; done; sleep 3600"
    workload = live_server.api(
        "POST",
        "/workloads",
        json={
            "name": f"ticker-{uuid.uuid4().hex[:6]}",
            "image": docker_cluster.image,
            "command": ["sh", "-c", script],
            "cpu": 0.1,
            "ram_gb": 0.0625,
            "cluster_id": docker_cluster.id,
        },
    )
    detail = WorkloadDetailPage(admin_page)
    detail.open_workload(workload["id"])
    detail.mark_page()
    expect(detail.status).to_have_text("running", timeout=30_000)
    detail.show_tab("Logs")
    expect(detail.logs).to_contain_text("tick-1", timeout=15_000)
    expect(detail.following).to_be_visible()
    # Lines printed after the tab opened arrive on the same open response.
    expect(detail.logs).to_contain_text(f"tick-{LINES}", timeout=LINES * 1000 + 10_000)
    expect(detail.following).to_be_visible()
    detail.expect_not_reloaded()
    detail.check_accessibility()
