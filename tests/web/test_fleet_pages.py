"""The operators' pages in a real browser against a real `gpuyard serve`: fleet overview,
servers and server detail (GPU cards, holders, drain), clusters, queue, fair share, all
workloads.

Each test makes its own cluster and servers over the API (the demo cluster is shared by
every browser test), so what it drains or fills is its own."""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from web.conftest import USER_PASSWORD, LiveServer, unique_email
from web.pages import (
    AllWorkloadsPage,
    AppShell,
    ClustersPage,
    FairSharePage,
    FleetOverviewPage,
    LoginPage,
    QueuePage,
    ServerDetailPage,
    ServersPage,
    WorkloadsPage,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _own_server(live_server: LiveServer, gpus: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh simulated cluster with one server labelled pool=<its suffix>."""
    suffix = uuid.uuid4().hex[:8]
    cluster = live_server.api(
        "POST", "/clusters", json={"name": f"web-{suffix}", "kind": "simulated"}
    )
    server = live_server.api(
        "POST",
        "/servers",
        json={
            "name": f"node-{suffix}",
            "cluster_id": cluster["id"],
            "cpu": 16,
            "ram_gb": 64,
            "storage_gb": 100,
            "gpus": [{"model": "NVIDIA L4", "memory_gb": 24}] * gpus,
            "labels": {"pool": suffix},
        },
    )
    return cluster, server


def _wait_for_status(live_server: LiveServer, workload_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        workload: dict[str, Any] = live_server.api("GET", f"/workloads/{workload_id}")
        if workload["status"] == status or time.monotonic() > deadline:
            assert workload["status"] == status, workload
            return workload
        time.sleep(0.2)


def _wait_for_gpu_samples(live_server: LiveServer, server_id: str) -> None:
    """The history loop samples every few seconds: wait for its first GPU point."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        history = live_server.api("GET", f"/servers/{server_id}/history", params={"window": "1h"})
        if history["gpus"] and history["gpus"][0]["points"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"no GPU samples of server {server_id} after 30 s")


def _log_in_as_new(page: Page, live_server: LiveServer, role: str) -> str:
    email = unique_email(role)
    code = live_server.create_invite(email, role=role)
    live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    login = LoginPage(page)
    login.open()
    login.log_in(email, USER_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    return email


def test_the_fleet_overview_shows_totals_models_and_charts(
    admin_page: Page, live_server: LiveServer
) -> None:
    overview = FleetOverviewPage(admin_page)
    overview.open()
    totals = live_server.api("GET", "/fleet/overview")
    expect(overview.server_count("Total")).to_have_text(str(totals["servers"]["total"]))
    expect(overview.server_count("Online")).to_have_text(str(totals["servers"]["online"]))
    first_model = totals["gpu_models"][0]
    expect(overview.gpu_model_row(first_model["model"])).to_contain_text(
        str(first_model["devices"])
    )
    expect(
        overview.resources.get_by_role("progressbar", name=re.compile("^GPU allocated"))
    ).to_be_attached()  # an empty bar has no width: attached, not "visible"
    free = next(f for f in totals["free_now"] if f["gpu_model"] == first_model["model"])
    expect(overview.free_now_row(first_model["model"]).get_by_role("cell").first).to_have_text(
        str(free["gpu"])
    )
    expect(overview.chart("Allocation (% of capacity)")).to_be_visible()
    expect(overview.chart("Utilisation (%)")).to_be_visible()
    overview.choose_window("Last day")
    expect(overview.chart("Allocation (% of capacity)")).to_be_visible()
    overview.check_accessibility()
    overview.screenshot("fleet-overview")


def test_an_operator_drains_maintains_and_deletes_a_server(
    page: Page, live_server: LiveServer
) -> None:
    _, server = _own_server(live_server)
    _log_in_as_new(page, live_server, "operator")

    servers = ServersPage(page)
    servers.open()
    servers.search(server["name"])
    expect(servers.cell(server["name"], "Status")).to_have_text("online")
    servers.open_server(server["name"])

    detail = ServerDetailPage(page, server["id"])
    detail.expect_loaded()
    expect(detail.title).to_have_text(f"Server {server['name']}")
    expect(detail.status).to_have_text("online")
    detail.act("Drain")
    expect(detail.status).to_have_text("draining")
    assert live_server.api("GET", f"/servers/{server['id']}")["status"] == "draining"
    expect(detail.events.get_by_role("row").filter(has_text="draining").first).to_be_visible()
    detail.check_accessibility()

    detail.act("Back online")
    expect(detail.status).to_have_text("online")
    assert live_server.api("GET", f"/servers/{server['id']}")["status"] == "online"
    detail.act("Maintenance")
    expect(detail.status).to_have_text("maintenance")
    assert live_server.api("GET", f"/servers/{server['id']}")["status"] == "maintenance"

    detail.delete()
    expect(page).to_have_url(re.compile(r"/servers$"))
    gone = httpx.get(
        f"{live_server.url}/api/v1/servers/{server['id']}",
        headers={"Authorization": f"Bearer {live_server.admin_token}"},
    )
    assert gone.status_code == 404


def test_the_server_detail_shows_gpu_cards_with_the_holder(
    admin_page: Page, live_server: LiveServer
) -> None:
    _, server = _own_server(live_server, gpus=2)
    pool = server["labels"]["pool"]
    workload = live_server.api(
        "POST",
        "/workloads",
        json={
            "name": f"holder-{pool}",
            "image": "pytorch/pytorch:2.4",
            "gpu": 1,
            "node_selector": {"pool": pool},
        },
    )
    placed = _wait_for_status(live_server, workload["id"], "running")
    assert placed["server_id"] == server["id"]
    (held,) = placed["gpu_indices"]
    free = 1 - held
    _wait_for_gpu_samples(live_server, server["id"])

    detail = ServerDetailPage(admin_page, server["id"])
    detail.open()
    held_card = detail.gpu_card(held)
    expect(held_card).to_contain_text("NVIDIA L4")
    expect(held_card).to_contain_text("GPU-")  # the device's UUID
    expect(held_card).to_contain_text("VRAM 24 GB")
    expect(
        held_card.get_by_role("progressbar", name="Allocated 1 / 1 of the device")
    ).to_be_visible()
    holder_link = held_card.get_by_role("link", name=f"holder-{pool}")
    expect(holder_link).to_be_visible()
    expect(detail.gpu_card(free)).to_contain_text("nobody")
    for title in ("Allocation (% of capacity)", "GPU allocation (% of each device)"):
        expect(detail.chart(title).locator("svg.recharts-surface").first).to_be_visible()
    detail.check_accessibility()
    detail.screenshot("server-detail")

    # A share with GPU memory on the free device: its card shows the memory reserved.
    share = live_server.api(
        "POST",
        "/workloads",
        json={
            "name": f"share-{pool}",
            "image": "busybox",
            "gpu": 0.25,
            "gpu_memory_gb": 6,
            "node_selector": {"pool": pool},
        },
    )
    assert _wait_for_status(live_server, share["id"], "running")["gpu_indices"] == [free]
    detail.open()
    expect(
        detail.gpu_card(free).get_by_role("progressbar", name="VRAM reserved 6 / 24 GB")
    ).to_be_visible()
    live_server.api("POST", f"/workloads/{share['id']}/stop")
    holder_link = detail.gpu_card(held).get_by_role("link", name=f"holder-{pool}")

    holder_link.click()
    expect(admin_page).to_have_url(re.compile(f"/workloads/{workload['id']}$"))
    live_server.api("POST", f"/workloads/{workload['id']}/stop")


def test_the_servers_table_registers_a_server_and_shows_usage(
    admin_page: Page, live_server: LiveServer
) -> None:
    cluster, _ = _own_server(live_server)
    name = f"reg-{uuid.uuid4().hex[:8]}"
    servers = ServersPage(admin_page)
    servers.open()
    servers.screenshot("servers")
    servers.register_simulated(
        f"{cluster['name']} (simulated)", name, cpu=32, ram_gb=128, gpu_model="NVIDIA H100", gpus=4
    )
    servers.search(name)
    expect(servers.cell(name, "GPUs")).to_have_text("4\u00d7 NVIDIA H100")
    expect(
        servers.row(name).get_by_role("progressbar", name=f"{name} CPU 0 / 32 cores")
    ).to_be_attached()
    listed = live_server.api("GET", "/servers", params={"cluster_id": cluster["id"]})
    assert name in {s["name"] for s in listed["data"]}
    servers.check_accessibility()


def test_clusters_are_created_renamed_and_deleted_only_when_empty(
    admin_page: Page, live_server: LiveServer
) -> None:
    busy, server = _own_server(live_server)
    empty = f"empty-{uuid.uuid4().hex[:8]}"
    clusters = ClustersPage(admin_page)
    clusters.open()
    clusters.create(empty)
    expect(clusters.row(empty)).to_contain_text("simulated")
    clusters.rename(empty, f"{empty}-renamed")
    expect(clusters.row(f"{empty}-renamed")).to_be_visible()

    clusters.delete(busy["name"])
    expect(clusters.delete_error).to_be_visible()
    expect(clusters.delete_error).not_to_have_text(
        re.compile(r"^\s*Could not delete the cluster\s*$")
    )
    expect(clusters.row(busy["name"])).to_be_visible()
    assert live_server.api("GET", f"/servers/{server['id']}")["cluster_id"] == busy["id"]

    clusters.delete(f"{empty}-renamed")
    expect(clusters.row(f"{empty}-renamed")).to_have_count(0)
    clusters.check_accessibility()


def test_the_queue_shows_pending_work_with_its_reason(
    admin_page: Page, live_server: LiveServer
) -> None:
    name = f"toobig-{uuid.uuid4().hex[:8]}"
    team = live_server.api(
        "POST", "/teams", json={"name": f"team-{name}", "hierarchy": {"guarantee": {"gpu": 4}}}
    )
    live_server.api(
        "POST",
        "/workloads",
        json={
            "name": name,
            "image": "busybox",
            "gpu": 8,
            "replicas": 5,
            "gang": True,
            "team_id": team["id"],
        },
    )
    queue = QueuePage(admin_page)
    queue.open()
    expect(queue.row(name)).to_be_visible()
    body = live_server.api("GET", "/queue")
    entry = next(e for e in body["data"] if e["workload"]["name"] == name)
    # Its team's place in the quota tree, as the queue's team figures give it.
    [shares] = [t for t in body["teams"] if t["team_id"] == team["id"]]
    assert shares["under_guarantee"] is True  # it holds nothing of its 4 GPUs
    expect(queue.cell(name, "Team")).to_have_text(
        f"team-{name}GPU 0 of {_amount(shares['fair_share']['gpu'])} fairunder guarantee"
    )
    expect(queue.cell(name, "Why it waits")).to_contain_text(entry["reason"])
    expect(queue.cell(name, "#")).to_have_text(str(entry["position"]))
    expect(queue.cell(name, "Retries")).to_have_text(str(entry["retries"]))
    assert entry["estimated_start"] is None  # five whole servers at once, on four: never
    expect(queue.cell(name, "Expected start")).to_have_text("unknown")
    registries = live_server.api("GET", "/queue")["registries"]
    badge = admin_page.get_by_test_id("queue-registries").locator("[data-registry=queued]")
    expect(badge).to_have_text(f"queued {registries['queued']}")
    expect(admin_page.get_by_role("heading", name="Deferred")).to_be_visible()
    queue.check_accessibility()
    queue.screenshot("queue")


#: The fair-share page's resources: (label, unit) as it writes them.
FAIRSHARE_RESOURCES = {"cpu": ("CPU", "cores"), "ram_gb": ("RAM", "GB"), "gpu": ("GPU", "GPUs")}
#: Its figure columns and the API fields they show.
FAIRSHARE_COLUMNS = {
    "Guarantee": "guarantee",
    "Limit": "limit",
    "Used": "used",
    "Borrowed": "borrowed",
    "Fair share": "fair_share",
    "Pending": "pending",
}


def _amount(value: float) -> str:
    """The dashboard's formatAmount: whole numbers as such, others to two decimals."""
    if float(value).is_integer():
        return str(int(value))
    return str(math.floor(value * 100 + 0.5) / 100)


def _shown(resource: str, value: float | None) -> str:
    label, unit = FAIRSHARE_RESOURCES[resource]
    return f"{label} no limit" if value is None else f"{label} {_amount(value)} {unit}"


def _expect_fairshare_as_api(fair: FairSharePage, api_rows: dict[str, dict[str, Any]]) -> None:
    """Every figure the page shows of these teams is the API's."""
    for name, team in api_rows.items():
        expect(fair.weight(name)).to_have_text(_amount(team["weight"]))
        for resource, weight in team["weights"].items():
            expect(fair.weight(name, resource)).to_have_count(0 if weight == team["weight"] else 1)
        for model in team["gpu_models"]:
            if model["fair_share"] is not None:
                expect(fair.gpu_model_share(name, model["model"])).to_have_text(
                    f"{model['model']}: {_amount(model['fair_share'])} GPUs "
                    f"(holds {_amount(model['used'])})"
                )
        share = _amount(math.floor(team["dominant_share"] * 1000 + 0.5) / 10)
        expect(fair.cell(name, "Dominant share")).to_have_text(f"{share}%")
        for column, field in FAIRSHARE_COLUMNS.items():
            for resource in FAIRSHARE_RESOURCES:
                expect(fair.figure(name, column, resource)).to_have_text(
                    _shown(resource, team[field][resource])
                )


def _fairshare_rows(live_server: LiveServer, names: list[str]) -> dict[str, dict[str, Any]]:
    rows = {r["name"]: r for r in live_server.api("GET", "/fairshare")["data"]}
    return {name: rows[name] for name in names}


def test_fair_share_shows_the_tree_and_borrowing_and_follows_work_live(
    admin_page: Page, live_server: LiveServer
) -> None:
    _, server = _own_server(live_server, gpus=2)
    suffix = server["labels"]["pool"]
    dept, lender, borrower = f"dept-{suffix}", f"lender-{suffix}", f"borrower-{suffix}"
    dept_id = live_server.api(
        "POST",
        "/teams",
        json={"name": dept, "hierarchy": {"guarantee": {"gpu": 2}, "weight": 2}},
    )["id"]
    live_server.api(
        "POST",
        "/teams",
        json={"name": lender, "hierarchy": {"parent_id": dept_id, "guarantee": {"gpu": 1}}},
    )
    borrower_id = live_server.api(
        "POST",
        "/teams",
        json={
            "name": borrower,
            "hierarchy": {
                "parent_id": dept_id,
                "guarantee": {"gpu": 1, "cpu": 1, "gpu_models": {"NVIDIA L4": 1}},
                "gpu_model_limits": {"NVIDIA L4": 2},
                "weights": {"gpu": 3},
                "gpu_model_weights": {"NVIDIA L4": 2},
            },
            "quota": {"cpu": 8, "ram_gb": None, "gpu": 2},
        },
    )["id"]
    running = live_server.api(
        "POST",
        "/workloads",
        json={
            "name": f"borrows-{suffix}",
            "image": "pytorch/pytorch:2.4",
            "cpu": 2,
            "ram_gb": 4,
            "gpu": 2,
            "team_id": borrower_id,
            "node_selector": {"pool": suffix},
        },
    )
    _wait_for_status(live_server, running["id"], "running")
    # A second one waits (the server's two GPUs are taken): the borrower's pending work.
    live_server.api(
        "POST",
        "/workloads",
        json={
            "name": f"waits-{suffix}",
            "image": "pytorch/pytorch:2.4",
            "cpu": 1,
            "ram_gb": 2,
            "gpu": 1,
            "team_id": borrower_id,
            "node_selector": {"pool": suffix},
        },
    )

    fair = FairSharePage(admin_page)
    fair.open()
    names = [dept, lender, borrower]
    api_rows = _fairshare_rows(live_server, names)
    assert api_rows[borrower]["used"]["gpu"] == 2
    assert api_rows[borrower]["borrowed"]["gpu"] == 1  # the idle lender's guarantee
    assert api_rows[borrower]["pending"]["gpu"] == 1
    assert api_rows[lender]["under_guarantee"] is True
    # The tree: the department, then its teams (by name), each saying where it sits.
    shown = [name for name in fair.rows() if name in names]
    assert shown == [dept, borrower, lender]
    expect(fair.row(borrower)).to_have_attribute("data-parent", dept)
    expect(fair.row(dept)).to_have_attribute("data-parent", "")
    expect(fair.cell(lender, "Team")).to_contain_text("under guarantee")
    expect(fair.cell(borrower, "Borrowed")).to_have_attribute("data-borrowing", "yes")
    expect(fair.figure(borrower, "Limit", "ram_gb")).to_have_text("RAM no limit")
    [model] = api_rows[borrower]["gpu_models"]
    expect(fair.gpu_model(borrower, "NVIDIA L4")).to_have_text(
        f"of which NVIDIA L4: {_amount(model['guarantee'])} GPUs (holds {_amount(model['used'])})"
    )
    assert model["limit"] == 2
    assert model["used"] == 2
    expect(fair.gpu_model_limit(borrower, "NVIDIA L4")).to_have_text(
        "NVIDIA L4: at most 2 GPUs (holds 2)"
    )
    expect(fair.gpu_model_limit(dept, "NVIDIA L4")).to_have_count(0)  # none of its own
    # Weights apart from the team's one: its GPU weight and its weight of the model; the
    # model's devices are then divided apart (every team shows its fair share of them).
    expect(fair.weight(borrower, "gpu")).to_have_text("GPU 3")
    expect(fair.weight(borrower, "NVIDIA L4")).to_have_text("NVIDIA L4 2")
    expect(fair.weight(lender, "gpu")).to_have_count(0)
    assert model["weight"] == 2
    assert model["fair_share"] == 2  # all it holds of the model; no one else wants it
    expect(fair.gpu_model_share(borrower, "NVIDIA L4")).to_have_text("NVIDIA L4: 2 GPUs (holds 2)")
    _expect_fairshare_as_api(fair, api_rows)
    capacity = live_server.api("GET", "/fairshare")["capacity"]
    expect(fair.capacity).to_contain_text(f"{_amount(capacity['gpu'])} GPUs")
    fair.check_accessibility()
    fair.screenshot("fairshare")

    # The work stops: the page follows without a reload (the waiting one starts, then
    # it stops too, and the borrower holds nothing).
    fair.mark_page()
    live_server.api("POST", f"/workloads/{running['id']}/stop")
    waiting = live_server.api("GET", "/workloads", params={"name": f"waits-{suffix}", "limit": 1})[
        "data"
    ][0]
    _wait_for_status(live_server, waiting["id"], "running")
    expect(fair.figure(borrower, "Used", "gpu")).to_have_text("GPU 1 GPUs")
    expect(fair.figure(borrower, "Pending", "gpu")).to_have_text("GPU 0 GPUs")
    expect(fair.gpu_model_limit(borrower, "NVIDIA L4")).to_have_text(
        "NVIDIA L4: at most 2 GPUs (holds 1)"
    )
    live_server.api("POST", f"/workloads/{waiting['id']}/stop")
    expect(fair.figure(borrower, "Used", "gpu")).to_have_text("GPU 0 GPUs")
    expect(fair.figure(borrower, "Borrowed", "gpu")).to_have_text("GPU 0 GPUs")
    expect(fair.cell(borrower, "Borrowed")).to_have_attribute("data-borrowing", "no")
    fair.expect_not_reloaded()
    _expect_fairshare_as_api(fair, _fairshare_rows(live_server, names))


def test_a_user_sees_only_their_teams_on_fair_share(page: Page, live_server: LiveServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    dept_id = live_server.api("POST", "/teams", json={"name": f"udept-{suffix}"})["id"]
    mine = live_server.api(
        "POST",
        "/teams",
        json={"name": f"mine-{suffix}", "hierarchy": {"parent_id": dept_id, "weight": 3}},
    )
    live_server.api("POST", "/teams", json={"name": f"theirs-{suffix}"})
    email = unique_email("fairshare")
    code = live_server.api(
        "POST", "/invites", json={"email": email, "role": "user", "team_id": mine["id"]}
    )["code"]
    live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    login = LoginPage(page)
    login.open()
    login.log_in(email, USER_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    AppShell(page).go_to("Fair share")
    fair = FairSharePage(page)
    fair.expect_loaded()
    token = live_server.login_token(email, USER_PASSWORD)
    visible = [r["name"] for r in live_server.api("GET", "/fairshare", token=token)["data"]]
    assert visible == [f"udept-{suffix}", f"mine-{suffix}"]
    expect(fair.table.locator("tbody tr")).to_have_count(len(visible))
    assert fair.rows() == visible
    expect(fair.cell(f"mine-{suffix}", "Weight")).to_have_text("3")
    expect(fair.row(f"theirs-{suffix}")).to_have_count(0)


def test_a_user_in_no_team_sees_the_empty_state_on_fair_share(
    page: Page, live_server: LiveServer
) -> None:
    email = _log_in_as_new(page, live_server, "user")
    token = live_server.login_token(email, USER_PASSWORD)
    assert live_server.api("GET", "/fairshare", token=token)["count"] == 0
    fair = FairSharePage(page)
    fair.open()
    expect(fair.empty).to_contain_text("No teams to show")
    expect(fair.table).to_have_count(0)


def test_all_workloads_filters_by_name_status_and_owner(
    page: Page, live_server: LiveServer
) -> None:
    prefix = f"flt{uuid.uuid4().hex[:6]}"
    for i in range(3):
        live_server.api(
            "POST", "/workloads", json={"name": f"{prefix}-run-{i}", "image": "busybox"}
        )
    live_server.api(
        "POST",
        "/workloads",
        json={"name": f"{prefix}-wait", "image": "busybox", "gpu": 8, "replicas": 5, "gang": True},
    )
    operator = _log_in_as_new(page, live_server, "operator")
    live_server.api(
        "POST",
        "/workloads",
        token=live_server.login_token(operator, USER_PASSWORD),
        json={"name": f"{prefix}-mine", "image": "busybox"},
    )

    everything = AllWorkloadsPage(page)
    everything.open()
    everything.filter_name_prefix(prefix)
    expect(everything.count_text).to_have_text("5 workloads")
    expect(everything.row(f"{prefix}-mine")).to_be_visible()
    everything.filter_status("pending")
    expect(everything.count_text).to_have_text("1 workload")
    expect(everything.row(f"{prefix}-wait")).to_be_visible()
    expect(everything.cell(f"{prefix}-wait", "Reason")).not_to_have_text("—")
    everything.check_accessibility()


def test_a_user_is_not_allowed_on_the_operator_pages(page: Page, live_server: LiveServer) -> None:
    _, server = _own_server(live_server)
    _log_in_as_new(page, live_server, "user")
    shell = AppShell(page)
    for path in ("/clusters", "/queue", "/all-workloads", f"/servers/{server['id']}"):
        page.goto(path)
        shell.expect_not_allowed()
