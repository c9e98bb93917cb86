"""A docker workload's logs followed in the browser: a real agent (in this process, over
the session's throwaway dockerd) registered in the test server (web/docker_cluster.py),
a container that prints a line a second, and the Logs tab showing each line as it is
printed (one response that stays open, GET /logs?follow=true), not when the page asks
again."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from web.conftest import LiveServer
from web.docker_cluster import DockerCluster
from web.pages import WorkloadDetailPage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

LINES = 8


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
