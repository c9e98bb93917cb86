"""The Fair share page with time-based fair share on (issue 21): a `gpuyard serve` of its
own with ``GPUYARD_FAIRSHARE_HALF_LIFE_S`` set (the session's server runs plain DRF) and
the history loop ticking every second, so a team's decayed usage accrues while the test
watches. The page says the half-life and shows each team's past usage and factor as the
API gives them; with it off (tests/web/test_fleet_pages.py) neither appears."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.processes import serve_processes
from playwright.sync_api import Browser, expect

from web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, VIEWPORT, LiveServer
from web.pages import FairSharePage, LoginPage, WorkloadsPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]

HALF_LIFE_S = 7200


@pytest.fixture
def decaying(dashboard_dist: Path, tmp_path: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_DEMO": "true",
        "GPUYARD_LOCAL_DOCKER": "off",
        "GPUYARD_SCHEDULER_INTERVAL_S": "0.3",
        "GPUYARD_STARTER_INTERVAL_S": "0.3",
        "GPUYARD_LOGIN_IP_MAX_ATTEMPTS": "100000",
        "GPUYARD_FAIRSHARE_HALF_LIFE_S": str(HALF_LIFE_S),
        "GPUYARD_HISTORY_SAMPLE_INTERVAL_S": "1",
    }
    with serve_processes(1, data_dir, None, env) as (url,):
        server = LiveServer(url=url, admin_token="")
        server.admin_token = server.login_token(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield server


def _team_share(server: LiveServer, name: str) -> dict[str, Any]:
    [team] = [t for t in server.api("GET", "/fairshare")["data"] if t["name"] == name]
    return team


def test_past_usage_and_the_factor_are_shown_as_the_api_gives_them(
    browser: Browser, decaying: LiveServer
) -> None:
    server = decaying
    name = f"vision-{uuid.uuid4().hex[:6]}"
    admin_id = server.api("GET", "/auth/me")["id"]
    team = server.api("POST", "/teams", json={"name": name, "members": [{"user_id": admin_id}]})
    server.api(
        "POST",
        "/workloads",
        json={"name": f"train-{name}", "image": "busybox", "gpu": 2, "team_id": team["id"]},
    )
    # The history loop accrues a running team's allocation once a second.
    deadline = time.monotonic() + 30
    while _team_share(server, name)["decayed_usage"]["gpu"] <= 0:
        assert time.monotonic() < deadline, "no decayed usage accrued"
        time.sleep(0.5)
    # Stop it, so the figures only decay (by half every two hours) while the page loads.
    [workload] = server.api("GET", "/workloads", params={"name": f"train-{name}"})["data"]
    server.api("POST", f"/workloads/{workload['id']}/stop")
    time.sleep(1.5)  # one more tick may add the last second of use
    share = _team_share(server, name)

    context = browser.new_context(
        base_url=server.url,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        color_scheme="light",
        locale="en-GB",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        LoginPage(page).open()
        LoginPage(page).log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        WorkloadsPage(page).expect_loaded()
        fairshare = FairSharePage(page)
        fairshare.open()
        expect(page.get_by_test_id("fairshare-decay")).to_contain_text("halving every 2 h")
        past = fairshare.cell(name, "Past usage")
        factor = past.get_by_test_id("fairshare-factor")
        expect(factor).to_have_text(re.compile(r"^factor [01]\.\d{3}$"))
        gpu = past.locator("[data-resource=gpu]")
        expect(gpu).to_have_text(re.compile(r"^GPU [0-9.e-]+ GPU-h$"))
        # The stored figures decay a little at every tick (a half-life of two hours: 0.01%
        # a second), so the page, read a moment after the API, agrees to within 1%.
        shown_factor = float(factor.inner_text().split()[1])
        shown_gpu_hours = float(gpu.inner_text().split()[1])
        assert shown_factor == pytest.approx(share["fairshare_factor"], abs=0.002)
        assert shown_gpu_hours == pytest.approx(share["decayed_usage"]["gpu"], rel=0.01)
        assert share["fairshare_factor"] < 1  # it used the fleet: it yields to the others
    finally:
        context.close()
