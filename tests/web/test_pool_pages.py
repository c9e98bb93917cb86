"""The warm pools page in a real browser against a real `gpuyard serve`: an admin creates a
pool of a catalog image on a simulated cluster and watches it fill (live), resizes it,
releases a claimed container and deletes the pool; a user's launch from the catalog
takes a warm container and the page says it came from the pool.

Each test has its own simulated cluster (one server) and image reference, so the warm
containers take nobody else's capacity and no other test's launch matches the pool."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from web.conftest import ADMIN_EMAIL, LiveServer
from web.pages import ImagesPage, LaunchPage, PoolsPage, WorkloadDetailPage
from web.test_image_pages import log_in_as_new_user

pytestmark = [pytest.mark.integration, pytest.mark.browser]

#: The pool loop is woken by a create or resize; the starter runs every 0.3 s.
LIVE_TIMEOUT_MS = 20_000


@dataclass
class PoolSetting:
    """A simulated cluster of one server and a catalog image only this test uses."""

    cluster_id: str
    cluster_name: str
    image: dict[str, Any]


@pytest.fixture
def pool_setting(live_server: LiveServer) -> Iterator[PoolSetting]:
    suffix = uuid.uuid4().hex[:6]
    cluster = live_server.api(
        "POST", "/clusters", json={"name": f"pools-{suffix}", "kind": "simulated"}
    )
    live_server.api(
        "POST",
        "/servers",
        json={
            "name": f"warm-{suffix}",
            "cluster_id": cluster["id"],
            "cpu": 8,
            "ram_gb": 16,
            "storage_gb": 100,
            "gpus": [],
        },
    )
    image = live_server.api(
        "POST",
        "/images",
        json={
            "name": f"site-{suffix}",
            "reference": f"web16/site-{suffix}:1",
            "type": "nginx",
            "default_port": 80,
            "cpu": 0.5,
            "ram_gb": 0.5,
            # Not the default: a launch from the catalog must carry it to match the pool.
            "files_path": "/srv/www",
        },
    )
    yield PoolSetting(cluster["id"], cluster["name"], image)
    for pool in live_server.api("GET", "/pools", params={"limit": 1000})["data"]:
        if pool["cluster_id"] == cluster["id"]:
            live_server.api("DELETE", f"/pools/{pool['id']}")
    for workload in live_server.api("GET", "/workloads", params={"cluster_id": cluster["id"]})[
        "data"
    ]:
        live_server.api("DELETE", f"/workloads/{workload['id']}")
    live_server.api("DELETE", f"/images/{image['id']}")


def pool_named(live_server: LiveServer, name: str) -> dict[str, Any]:
    pools: list[dict[str, Any]] = live_server.api("GET", "/pools", params={"limit": 1000})["data"]
    [found] = [p for p in pools if p["name"] == name]
    return found


def create_pool(live_server: LiveServer, setting: PoolSetting, target_size: int) -> str:
    name = f"pool-{uuid.uuid4().hex[:6]}"
    image = setting.image
    live_server.api(
        "POST",
        "/pools",
        json={
            "name": name,
            "image_type": image["type"],
            "image": image["reference"],
            "cluster_id": setting.cluster_id,
            "target_size": target_size,
            "port_min": 31000,
            "port_max": 31009,
            "container_port": image["default_port"],
            "cpu": image["cpu"],
            "ram_gb": image["ram_gb"],
            "files_path": image["files_path"],
        },
    )
    return name


def test_an_admin_creates_a_pool_watches_it_fill_resizes_releases_and_deletes_it(
    admin_page: Page, live_server: LiveServer, pool_setting: PoolSetting
) -> None:
    name = f"pool-{uuid.uuid4().hex[:6]}"
    pools = PoolsPage(admin_page)
    pools.open()
    pools.mark_page()
    pools.create(
        name,
        catalog_image=pool_setting.image["name"],
        cluster=pool_setting.cluster_name,
        target_size=2,
        ports=(31000, 31009),
    )
    stored = pool_named(live_server, name)
    assert (stored["image"], stored["image_type"]) == (
        pool_setting.image["reference"],
        "nginx",
    )
    assert (stored["container_port"], stored["cpu"], stored["ram_gb"]) == (80, 0.5, 0.5)
    assert stored["files_path"] == "/srv/www"  # the catalog image's, filled in by the form
    assert (stored["cluster_id"], stored["target_size"]) == (pool_setting.cluster_id, 2)

    # The pool loop starts the warm containers; the page follows without a reload.
    expect(pools.count(name, "target")).to_have_text("2")
    expect(pools.pool(name)).to_contain_text("files at /srv/www")
    expect(pools.count(name, "available")).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
    expect(pools.member_rows(name, "available")).to_have_count(2)
    expect(pools.members(name)).to_contain_text("pool_nginx_0_")
    pools.expect_not_reloaded()
    pools.check_accessibility()
    pools.screenshot("pools")

    pools.resize(name, 3)
    expect(pools.count(name, "target")).to_have_text("3")
    expect(pools.count(name, "available")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    assert pool_named(live_server, name)["target_size"] == 3

    # A matching launch (the catalog image's defaults) takes one: assigned to its user.
    image = pool_setting.image
    claimed = live_server.api(
        "POST",
        "/workloads",
        json={
            "image": image["reference"],
            "cpu": 0.5,
            "ram_gb": 0.5,
            "ports": [80],
            "files_path": image["files_path"],
            "cluster_id": pool_setting.cluster_id,
        },
    )
    assert claimed["from_pool"] is True
    expect(pools.count(name, "assigned")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    assigned = pools.member_rows(name, "assigned")
    expect(assigned).to_have_count(1)
    expect(assigned).to_contain_text(ADMIN_EMAIL)
    container = assigned.get_by_role("rowheader").inner_text().strip()
    pools.release(container)
    expect(pools.count(name, "assigned")).to_have_text("0", timeout=LIVE_TIMEOUT_MS)
    # Taken back from its user (stopped, never handed to another launch) and replaced.
    released = live_server.api("GET", f"/workloads/{claimed['id']}")
    assert released["status"] in {"stopping", "stopped"}
    expect(pools.count(name, "available")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)

    pools.delete(name)
    expect(pools.pool(name)).to_have_count(0)
    assert name not in {p["name"] for p in live_server.api("GET", "/pools")["data"]}


def test_a_launch_from_the_catalog_takes_a_warm_container_and_says_so(
    page: Page, live_server: LiveServer, pool_setting: PoolSetting
) -> None:
    pool_name = create_pool(live_server, pool_setting, target_size=1)
    for _ in range(LIVE_TIMEOUT_MS // 100):
        if pool_named(live_server, pool_name)["available"] == 1:
            break
        page.wait_for_timeout(100)
    assert pool_named(live_server, pool_name)["available"] == 1

    user_id = log_in_as_new_user(page, live_server)
    launch = LaunchPage(page)
    launch.open()
    launch.choose_catalog_image(pool_setting.image["name"])
    expect(launch.field("Image")).to_have_value(pool_setting.image["reference"])
    launch.choose("Cluster", pool_setting.cluster_name)
    name = f"warm-{uuid.uuid4().hex[:6]}"
    launch.fill("Name", name)
    launch.submit()

    detail = WorkloadDetailPage(page)
    expect(detail.heading).to_have_text(name)
    detail.expect_loaded()
    expect(detail.start).to_have_text("from a warm pool (started at once)")
    expect(detail.status).to_have_text("running")
    expect(page.get_by_text("Started at once from a warm pool.")).to_be_visible()
    workload_id = page.url.rsplit("/", 1)[1]
    workload = live_server.api("GET", f"/workloads/{workload_id}")
    assert workload["from_pool"] is True
    assert workload["owner_id"] == user_id
    assert workload["pool_id"] == pool_named(live_server, pool_name)["id"]
    assert workload["files_path"] == "/srv/www"

    # Other resources than the pool's: a cold start, and the page says so.
    ImagesPage(page).open()
    ImagesPage(page).launch(pool_setting.image["name"])
    launch.expect_loaded()
    launch.fill("Name", f"cold-{uuid.uuid4().hex[:6]}")
    launch.fill("CPU cores", 1)  # other resources than the pool's: never from it
    launch.submit()
    expect(detail.heading).to_have_text(re.compile("^cold-"))
    expect(detail.start).to_have_text("cold start")
