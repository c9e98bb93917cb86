"""The workload pages in a real browser: launch, detail (live status, timeline, logs),
edit resources, stop and delete, with the live stream updating the page without reload.

Each test that needs capacity gets its own small simulated cluster (one server, GPUs of a
model no other test uses), so tests sharing the session's server do not take each other's
GPUs and the free-now figures are exact."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from web.conftest import USER_PASSWORD, LiveServer, unique_email
from web.pages import LaunchPage, LoginPage, WorkloadDetailPage, WorkloadsPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]

#: The scheduler and starter run every 0.3 s in the test server; allow for a slow machine.
LIVE_TIMEOUT_MS = 15_000


@dataclass
class GpuCluster:
    """A simulated cluster of one server with `gpus` devices of `model`."""

    id: str
    name: str
    server_id: str
    server_name: str
    model: str
    gpus: int


@pytest.fixture
def gpu_cluster(live_server: LiveServer) -> Iterator[GpuCluster]:
    suffix = uuid.uuid4().hex[:6]
    cluster = live_server.api(
        "POST", "/clusters", json={"name": f"web-{suffix}", "kind": "simulated"}
    )
    model = f"WebGPU-{suffix}"
    server = live_server.api(
        "POST",
        "/servers",
        json={
            "name": f"node-{suffix}",
            "cluster_id": cluster["id"],
            "cpu": 16,
            "ram_gb": 64,
            "storage_gb": 100,
            "gpus": [{"model": model, "memory_gb": 24} for _ in range(2)],
        },
    )
    yield GpuCluster(cluster["id"], cluster["name"], server["id"], server["name"], model, 2)
    # Give the capacity back: what the test left is deleted (stopped first).
    for workload in live_server.api("GET", "/workloads", params={"cluster_id": cluster["id"]})[
        "data"
    ]:
        live_server.api("DELETE", f"/workloads/{workload['id']}")


def submit(live_server: LiveServer, cluster: GpuCluster, **body: Any) -> dict[str, Any]:
    workload: dict[str, Any] = live_server.api(
        "POST",
        "/workloads",
        json={"image": "busybox", "cpu": 1, "cluster_id": cluster.id, **body},
    )
    return workload


def wait_for_status(
    page: Page, live_server: LiveServer, workload_id: str, status: str
) -> dict[str, Any]:
    """Wait (over the API, outside the page under test) until the workload is `status`."""
    for _ in range(LIVE_TIMEOUT_MS // 100):
        workload: dict[str, Any] = live_server.api("GET", f"/workloads/{workload_id}")
        if workload["status"] == status:
            return workload
        page.wait_for_timeout(100)
    raise AssertionError(f"{workload_id} never became {status}: {workload}")


def test_launch_a_quarter_gpu_with_gpu_memory(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    name = f"quarter-{uuid.uuid4().hex[:6]}"
    launch = LaunchPage(admin_page)
    launch.open()
    launch.choose("Cluster", gpu_cluster.name)
    launch.fill("Image", "busybox")
    launch.fill("Name", name)
    launch.fill("GPUs", "0.33")
    launch.submit()
    # The form checks the server's rule (0.05 steps by default) before sending anything.
    launch.expect_field_error("GPUs", "in steps of 0.05")
    assert live_server.api("GET", "/workloads", params={"name": name})["count"] == 0
    launch.fill("GPUs", "0.25")
    launch.fill("GPU memory (GB)", 8)
    launch.check_accessibility()
    launch.submit()

    detail = WorkloadDetailPage(admin_page)
    expect(detail.heading).to_have_text(name)
    created = live_server.api("GET", "/workloads", params={"name": name})["data"][0]
    assert (created["gpu"], created["gpu_memory_gb"]) == (0.25, 8)


def test_launch_a_gpu_workload_and_watch_it_run_without_reload(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    name = f"launch-{uuid.uuid4().hex[:6]}"
    launch = LaunchPage(admin_page)
    launch.open()
    launch.choose("Cluster", gpu_cluster.name)
    launch.fill("Image", "pytorch/pytorch:2.4")
    launch.fill("Name", name)
    launch.fill("GPUs", 1)
    launch.choose("GPU model", gpu_cluster.model)
    # What is free now, for this cluster and model, beside each field.
    launch.expect_hint("GPUs", f"2 whole GPUs together ({gpu_cluster.model})")
    launch.expect_hint("CPU cores", "16 cores on one server")
    launch.expect_hint("RAM (GB)", "64 GB on that server")
    launch.fill("CPU cores", 2)
    launch.fill("RAM (GB)", 8)
    launch.choose("Priority", "4")
    launch.fill("Command", 'sh -c "python train.py --epochs 3"')
    launch.add_env("EPOCHS", "3")
    launch.add_port(8888)
    expect(launch.not_free_now).to_have_count(0)
    launch.check_accessibility()
    admin_page.evaluate("() => window.scrollTo(0, 0)")
    launch.screenshot("launch")
    launch.submit()

    detail = WorkloadDetailPage(admin_page)
    expect(detail.heading).to_have_text(name)
    detail.expect_loaded()
    detail.mark_page()
    # Placed and started by the server's loops; the live stream brings it to the page.
    expect(detail.status).to_have_text("running", timeout=LIVE_TIMEOUT_MS)
    expect(detail.server).to_have_text(gpu_cluster.server_name)
    expect(detail.gpus).to_have_text(re.compile(r"^[01]$"))
    expect(detail.timeline).to_contain_text("running", timeout=LIVE_TIMEOUT_MS)
    expect(detail.reason).to_have_count(0)
    detail.expect_not_reloaded()

    created = live_server.api("GET", "/workloads", params={"name": name})["data"][0]
    assert (created["gpu"], created["gpu_model"]) == (1, gpu_cluster.model)
    assert (created["cpu"], created["ram_gb"], created["priority"]) == (2, 8, 4)
    assert created["cluster_id"] == gpu_cluster.id
    assert created["command"] == ["sh", "-c", "python train.py --epochs 3"]
    assert created["env"] == {"EPOCHS": "3"}
    assert [p["container_port"] for p in created["ports"]] == [8888]

    # A simulated workload's log is its lifecycle: it shows the start.
    detail.show_tab("Logs")
    expect(detail.logs).to_contain_text("[running]", timeout=LIVE_TIMEOUT_MS)
    detail.check_accessibility()
    detail.show_tab("Timeline")
    detail.screenshot("workload-detail")


def test_a_workload_that_cannot_run_shows_why_at_once(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    # Both GPUs are held by work that may not be preempted.
    blocker = submit(
        live_server, gpu_cluster, name=f"holder-{uuid.uuid4().hex[:6]}", gpu=gpu_cluster.gpus,
        gpu_model=gpu_cluster.model, priority=5, preemptible=False,
    )  # fmt: skip
    wait_for_status(admin_page, live_server, blocker["id"], "running")
    name = f"toobig-{uuid.uuid4().hex[:6]}"
    launch = LaunchPage(admin_page)
    launch.open()
    launch.choose("Cluster", gpu_cluster.name)
    launch.fill("Image", "busybox")
    launch.fill("Name", name)
    launch.fill("GPUs", 4)
    launch.choose("GPU model", gpu_cluster.model)
    # More than any server has: the API refuses it, on the field, and nothing is written.
    launch.submit()
    launch.expect_field_error("GPUs", "can never run")
    launch.expect_field_error("GPUs", "at most 2 per server")
    assert live_server.api("GET", "/workloads", params={"name": name})["count"] == 0

    # What fits an empty server but not now: the form says so before it is sent...
    launch.fill("GPUs", 2)
    expect(launch.not_free_now).to_be_visible()
    launch.submit()

    # ...and the workload's page says why it waits as soon as the scheduler has looked.
    detail = WorkloadDetailPage(admin_page)
    expect(detail.heading).to_have_text(name)
    expect(detail.status).to_have_text("pending")
    expect(detail.reason).to_be_visible()
    expect(detail.reason).not_to_contain_text("waiting for the scheduler", timeout=LIVE_TIMEOUT_MS)
    expect(detail.reason).to_contain_text(re.compile("GPU", re.IGNORECASE))
    expect(detail.server).to_have_text("—")
    detail.check_accessibility()


def test_the_launch_form_checks_bounds_and_shows_the_apis_refusal_on_its_field(
    admin_page: Page, live_server: LiveServer
) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    launch = LaunchPage(admin_page)
    launch.open()
    launch.fill("Name", name)
    launch.fill("CPU cores", 5000)
    launch.fill("GPUs", "1.5")
    launch.add_env("1BAD", "x")
    launch.add_port(70000)
    launch.fill("Command", 'sh -c "unclosed')
    launch.submit()
    launch.expect_field_error("Image", "Enter an image")
    launch.expect_field_error("CPU cores", "At most 4096")
    launch.expect_field_error("GPUs", "whole number of GPUs")
    launch.expect_field_error("Name of variable 1", "not starting with a digit")
    launch.expect_field_error("Ports", "70000: a port is 1")
    launch.expect_field_error("Command", "A quote is not closed")
    launch.check_accessibility()
    # Nothing was sent.
    assert live_server.api("GET", "/workloads", params={"name": name})["count"] == 0

    # What only the API checks comes back on the field it names.
    launch.page.get_by_role("button", name="Remove variable 1").click()
    launch.field("Ports").press("Backspace")
    launch.fill("Command", "")
    launch.fill("Image", "busybox")
    launch.fill("CPU cores", 0)
    launch.fill("RAM (GB)", 0)
    launch.fill("GPUs", 0)
    launch.submit()
    launch.expect_field_error("CPU cores", "a workload must ask for some resources")
    expect(launch.refusal).to_have_count(0)
    assert live_server.api("GET", "/workloads", params={"name": name})["count"] == 0


def test_a_preemption_appears_live_on_the_victims_page(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    suffix = uuid.uuid4().hex[:6]
    victim = submit(
        live_server,
        gpu_cluster,
        name=f"low-{suffix}",
        gpu=gpu_cluster.gpus,
        gpu_model=gpu_cluster.model,
        priority=1,
    )
    wait_for_status(admin_page, live_server, victim["id"], "running")

    detail = WorkloadDetailPage(admin_page)
    detail.open_workload(victim["id"])
    expect(detail.status).to_have_text("running")
    expect(detail.server).to_have_text(gpu_cluster.server_name)
    detail.mark_page()

    urgent = submit(
        live_server,
        gpu_cluster,
        name=f"urgent-{suffix}",
        gpu=gpu_cluster.gpus,
        gpu_model=gpu_cluster.model,
        priority=5,
    )
    expect(detail.status).to_have_text("preempted", timeout=LIVE_TIMEOUT_MS)
    expect(detail.reason).to_contain_text(f"preempted by {urgent['name']} (priority 5)")
    expect(detail.timeline).to_contain_text("running → preempted", timeout=LIVE_TIMEOUT_MS)
    expect(detail.server).to_have_text("—")
    # Its log (a simulated workload's lifecycle) is read again on the change.
    detail.show_tab("Logs")
    expect(detail.logs).to_contain_text("[preempted]")
    detail.expect_not_reloaded()
    detail.check_accessibility()
    assert wait_for_status(admin_page, live_server, urgent["id"], "running")["server_id"] == (
        gpu_cluster.server_id
    )


def test_edit_resources_in_the_dialog(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    workload = submit(
        live_server, gpu_cluster, name=f"edit-{uuid.uuid4().hex[:6]}", cpu=1, ram_gb=2
    )
    wait_for_status(admin_page, live_server, workload["id"], "running")
    detail = WorkloadDetailPage(admin_page)
    detail.open_workload(workload["id"])
    expect(detail.resources).to_contain_text("1 CPU · 2 GB RAM")

    # A bound is checked in the dialog: nothing is sent.
    dialog = detail.edit_resources(**{"GPUs": "2.5"})
    expect(dialog.get_by_role("textbox", name="GPUs")).to_have_accessible_description(
        re.compile("whole number of GPUs")
    )
    detail.check_accessibility()
    assert live_server.api("GET", f"/workloads/{workload['id']}")["gpu"] == 0
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)

    dialog = detail.edit_resources(**{"CPU cores": 2, "RAM (GB)": 4})
    expect(dialog).to_have_count(0)
    expect(detail.resources).to_contain_text("2 CPU · 4 GB RAM")
    changed = live_server.api("GET", f"/workloads/{workload['id']}")
    assert (changed["cpu"], changed["ram_gb"]) == (2, 4)
    # Resized where it runs (a simulated server has room): still running, and the
    # timeline tells it.
    expect(detail.status).to_have_text("running")
    expect(detail.timeline).to_contain_text("resized in place", timeout=LIVE_TIMEOUT_MS)


def test_stop_and_delete_ask_first(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    name = f"stopme-{uuid.uuid4().hex[:6]}"
    workload = submit(live_server, gpu_cluster, name=name)
    wait_for_status(admin_page, live_server, workload["id"], "running")

    # From My workloads: a click on the row opens the workload.
    workloads = WorkloadsPage(admin_page)
    workloads.open()
    workloads.open_row(name)
    detail = WorkloadDetailPage(admin_page)
    expect(detail.heading).to_have_text(name)
    detail.expect_loaded()

    detail.stop(confirm=False)
    assert live_server.api("GET", f"/workloads/{workload['id']}")["status"] == "running"
    detail.stop()
    expect(detail.status).to_have_text("stopped")
    assert live_server.api("GET", f"/workloads/{workload['id']}")["status"] == "stopped"

    detail.delete(confirm=False)
    expect(detail.heading).to_have_text(name)
    detail.delete()
    workloads.expect_loaded()
    expect(workloads.row(name)).to_have_count(0)
    response = live_server.api("GET", "/workloads", params={"name": name})
    assert response["count"] == 0


def test_delete_from_my_workloads_row_menu(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    name = f"rowdel-{uuid.uuid4().hex[:6]}"
    submit(live_server, gpu_cluster, name=name)
    workloads = WorkloadsPage(admin_page)
    workloads.open()
    expect(workloads.row(name)).to_be_visible()
    workloads.row_action(name, "Delete")
    dialog = admin_page.get_by_role("dialog", name=f"Delete {name}?")
    expect(dialog).to_contain_text("cannot be undone")
    workloads.check_accessibility()
    dialog.get_by_role("button", name="Delete workload").click()
    expect(workloads.row(name)).to_have_count(0)
    assert live_server.api("GET", "/workloads", params={"name": name})["count"] == 0


def test_my_workloads_follow_changes_without_reload(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    workloads = WorkloadsPage(admin_page)
    workloads.open()
    workloads.mark_page()
    name = f"listed-{uuid.uuid4().hex[:6]}"
    workload = submit(live_server, gpu_cluster, name=name, gpu=1, gpu_model=gpu_cluster.model)

    # Submitted elsewhere (the API): the row appears, then runs, with no Refresh click.
    expect(workloads.row(name)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(workloads.cell(name, "Status")).to_have_text("running", timeout=LIVE_TIMEOUT_MS)
    expect(workloads.cell(name, "Server")).to_have_text(gpu_cluster.server_name)
    live_server.api("POST", f"/workloads/{workload['id']}/stop")
    expect(workloads.cell(name, "Status")).to_have_text("stopped", timeout=LIVE_TIMEOUT_MS)
    workloads.expect_not_reloaded()


def test_a_user_launches_and_sees_only_their_own_workloads(
    page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    email = unique_email("launcher")
    code = live_server.create_invite(email)
    live_server.api(
        "POST",
        "/auth/register",
        json={"invite_code": code, "email": email, "password": USER_PASSWORD},
    )
    others = submit(live_server, gpu_cluster, name=f"admins-{uuid.uuid4().hex[:6]}")
    login = LoginPage(page)
    login.open_with_next("/launch")
    login.log_in(email, USER_PASSWORD)

    launch = LaunchPage(page)
    launch.expect_loaded()
    launch.choose("Cluster", gpu_cluster.name)
    launch.fill("Image", "busybox")
    name = f"mine-{uuid.uuid4().hex[:6]}"
    launch.fill("Name", name)
    # A user's role may ask for priority 3 at most (the policy's default): only that
    # much is offered.
    launch.expect_hint("Priority", "up to 3 for you")
    launch.field("Priority").click()
    expect(page.get_by_role("option")).to_have_text(["1 (lowest)", "2", "3 (default)"])
    page.keyboard.press("Escape")
    launch.choose("Priority", "3")
    launch.submit()
    detail = WorkloadDetailPage(page)
    expect(detail.heading).to_have_text(name)
    detail.mark_page()
    expect(detail.status).to_have_text("running", timeout=LIVE_TIMEOUT_MS)
    detail.expect_not_reloaded()

    workloads = WorkloadsPage(page)
    page.get_by_role("link", name="My workloads").click()
    workloads.expect_loaded()
    expect(workloads.row(name)).to_be_visible()
    expect(workloads.cell(name, "Status")).to_have_text("running")
    expect(workloads.row(others["name"])).to_have_count(0)
    # Another user's workload is not theirs to open.
    detail.visit(others["id"])
    expect(detail.heading).to_have_text("No such workload")
    detail.check_accessibility()


def test_a_workload_of_several_replicas_shows_where_each_runs(
    admin_page: Page, live_server: LiveServer, gpu_cluster: GpuCluster
) -> None:
    workload = submit(
        live_server,
        gpu_cluster,
        name=f"pair-{uuid.uuid4().hex[:6]}",
        replicas=2,
        gang=True,
        gpu=1,
        gpu_model=gpu_cluster.model,
    )
    wait_for_status(admin_page, live_server, workload["id"], "running")
    detail = WorkloadDetailPage(admin_page)
    detail.open_workload(workload["id"])
    expect(detail.replicas).to_contain_text(f"#0 {gpu_cluster.server_name}")
    expect(detail.replicas).to_contain_text(f"#1 {gpu_cluster.server_name}")
