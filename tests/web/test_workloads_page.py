"""My workloads in a real browser, with workloads submitted over the API."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from web.conftest import USER_PASSWORD, LiveServer, unique_email
from web.pages import LoginPage, WorkloadsPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_my_workloads_lists_a_workload_submitted_over_the_api(
    admin_page: Page, live_server: LiveServer
) -> None:
    suffix = uuid.uuid4().hex[:6]
    trainer = live_server.api(
        "POST",
        "/workloads",
        json={"name": f"train-{suffix}", "image": "pytorch/pytorch:2.4", "gpu": 2, "ports": [8888]},
    )
    too_big = live_server.api(
        "POST",
        "/workloads",
        json={
            "name": f"huge-{suffix}",
            "image": "pytorch/pytorch:2.4",
            "gpu": 8,
            "replicas": 5,
            "gang": True,
        },
    )
    assert trainer["owner_id"] == too_big["owner_id"]

    workloads = WorkloadsPage(admin_page)
    workloads.open()
    expect(workloads.row(f"train-{suffix}")).to_be_visible()
    expect(workloads.row(f"huge-{suffix}")).to_be_visible()
    # The scheduler runs in the server: wait for the placement, refreshing the list.
    for _ in range(50):
        # textContent: the badge shows its text upper-cased (CSS), innerText would too.
        if workloads.cell(f"train-{suffix}", "Status").text_content() == "running":
            break
        admin_page.wait_for_timeout(200)
        workloads.refresh()
    expect(workloads.cell(f"train-{suffix}", "Status")).to_have_text("running")
    placed = live_server.api("GET", f"/workloads/{trainer['id']}")
    expect(workloads.cell(f"train-{suffix}", "Server")).to_have_text(placed["server_name"])
    expect(workloads.cell(f"train-{suffix}", "GPUs")).to_have_text(
        ", ".join(str(i) for i in placed["gpu_indices"])
    )
    expect(workloads.cell(f"train-{suffix}", "Ports")).to_contain_text("8888")
    expect(workloads.cell(f"huge-{suffix}", "Status")).to_have_text("pending")
    expect(workloads.cell(f"huge-{suffix}", "Reason")).not_to_have_text("—")
    workloads.check_accessibility()
    workloads.screenshot("my-workloads")


def test_a_long_list_is_virtualised(page: Page, live_server: LiveServer) -> None:
    email = unique_email("many")
    code = live_server.create_invite(email)
    live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    token = live_server.login_token(email, USER_PASSWORD)
    total = 100
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: live_server.api(
                    "POST",
                    "/workloads",
                    token=token,
                    json={"name": f"w{i:03d}", "image": "busybox"},
                ),
                range(total),
            )
        )

    login = LoginPage(page)
    login.open()
    login.log_in(email, USER_PASSWORD)
    workloads = WorkloadsPage(page)
    workloads.expect_loaded()
    expect(workloads.count_text).to_have_text(f"{total} workloads")
    shown = workloads.rendered_row_indices()
    assert 0 in shown
    assert len(shown) < total / 2, f"{len(shown)} of {total} rows in the DOM"
    workloads.scroll_to_bottom()
    expect(workloads.table.locator(f'tbody tr[data-index="{total - 1}"]')).to_be_attached()
    assert 0 not in workloads.rendered_row_indices()
