"""Idle culling in a real browser against a real `gpuyard serve` (issue 19): the team
dialog shows and sets the team's policy (as the API then answers), and a running
workload's page says which policy applies to it."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from web.conftest import LiveServer
from web.pages import TeamsPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_the_team_dialog_sets_the_culling_policy(admin_page: Page, live_server: LiveServer) -> None:
    name = f"team-{uuid.uuid4().hex[:8]}"
    teams = TeamsPage(admin_page)
    teams.open()
    teams.create(name, gpu_quota=2)
    dialog = teams.edit(name)
    section = dialog.get_by_test_id("team-culling")
    expect(section).to_contain_text("Idle workloads are not stopped (default (off))")
    section.get_by_role("textbox", name="Idle culling").click()
    admin_page.get_by_role("option", name="on", exact=True).click()
    section.get_by_label("Threshold (%)").fill("7")
    section.get_by_label("Window (minutes)").fill("45")
    section.get_by_role("button", name="Save culling policy").click()
    expect(section.get_by_text("Saved.")).to_be_visible()
    expect(section).to_contain_text("stopped after 45 min below 7 %")
    teams.check_accessibility()
    team = next(t for t in live_server.api("GET", "/teams")["data"] if t["name"] == name)
    policy = live_server.api("GET", f"/teams/{team['id']}/culling")["policy"]
    assert (policy["mode"], policy["threshold_pct"], policy["window_s"]) == ("on", 7.0, 2700)


def test_a_running_workload_shows_its_culling_policy(
    admin_page: Page, live_server: LiveServer
) -> None:
    # On the simulated demo cluster: a docker cluster another module registered in this
    # server (tests/web/docker_cluster.py) has no image called busybox.
    demo = next(c for c in live_server.api("GET", "/clusters")["data"] if c["name"] == "demo")
    workload = live_server.api(
        "POST",
        "/workloads",
        json={"image": "busybox", "cpu": 1, "max_lifetime_s": 7200, "cluster_id": demo["id"]},
    )
    admin_page.goto(f"/workloads/{workload['id']}")
    notice = admin_page.get_by_test_id("workload-culling")
    expect(notice).to_contain_text("not culled when idle (default (off))")
    expect(notice).to_contain_text("maximum lifetime 2 h (set on the workload)")
