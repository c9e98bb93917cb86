"""The cleanup dialog of a docker server in the browser: a dry run first (the leftover
stopped container and files directory of a workload gpuyard no longer has, their sizes,
the total), then the confirmed removal, its result, and the server event it records; the
container is gone from the real dockerd."""

from __future__ import annotations

import uuid

import pytest
from docker.errors import NotFound
from playwright.sync_api import Page, expect

from gpuyard.agent.models import LABEL_AGENT, LABEL_REPLICA, LABEL_WORKLOAD
from web.conftest import LiveServer
from web.docker_cluster import DockerCluster
from web.pages import ServerDetailPage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def test_the_cleanup_dialog_lists_then_removes_the_leftovers(
    admin_page: Page, live_server: LiveServer, docker_cluster: DockerCluster
) -> None:
    ghost = f"ghost{uuid.uuid4().hex[:8]}"
    labels = {LABEL_AGENT: docker_cluster.agent_name, LABEL_WORKLOAD: ghost, LABEL_REPLICA: "0"}
    container = docker_cluster.docker.containers.run(
        docker_cluster.image, ["true"], labels=labels, detach=True
    )
    container.wait(timeout=20)
    files = docker_cluster.data_dir / "workloads" / ghost / "files"
    files.mkdir(parents=True)
    (files / "result.bin").write_bytes(b"r" * 2 * 1024 * 1024)
    servers = live_server.api("GET", "/servers", params={"cluster_id": docker_cluster.id})
    [server] = servers["data"]

    detail = ServerDetailPage(admin_page, server["id"])
    detail.open()
    dialog = detail.open_cleanup()
    # Fresh leftovers are within the server's one-day retention: nothing to clean yet.
    expect(dialog.get_by_text(ghost)).to_have_count(0)
    dialog.get_by_label("Retention (hours)").fill("0")
    dialog.get_by_role("button", name="List again").click()
    items = dialog.get_by_test_id("cleanup-items")
    expect(items.get_by_role("row").filter(has_text=ghost)).to_have_count(1)  # the files
    expect(items.get_by_role("row").filter(has_text="2.0 MiB")).to_have_count(1)
    expect(items.get_by_role("row").filter(has_text=container.name or "")).to_have_count(1)
    expect(dialog.get_by_test_id("cleanup-plan-total")).to_contain_text("would be freed")
    detail.check_accessibility()
    assert container.id is not None
    docker_cluster.docker.containers.get(container.id)  # a dry run removes nothing

    dialog.get_by_role("button", name="Remove").click()
    result = dialog.get_by_test_id("cleanup-result")
    expect(result).to_contain_text("Cleanup done")
    expect(result).to_contain_text("freed")
    expect(items.get_by_role("row").filter(has_text=ghost)).to_contain_text("removed")
    detail.check_accessibility()
    dialog.get_by_role("button", name="Close", exact=True).last.click()
    expect(admin_page.get_by_role("dialog")).to_have_count(0)
    expect(detail.events).to_contain_text("cleanup removed")
    with pytest.raises(NotFound):
        docker_cluster.docker.containers.get(container.id)
    assert not files.exists()
