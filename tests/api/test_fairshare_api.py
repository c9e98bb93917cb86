"""GET /api/v1/fairshare: guarantee, usage, borrowed and fair share per team of the tree,
from the scheduler's snapshot of the demo fleet (4 servers x 8 GPUs); users see their own
teams and the departments above them only."""

from __future__ import annotations

from typing import Any

from factories.app import add_user, authed_client, mint_token, settle
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _team(client: TestClient, name: str, **body: Any) -> str:
    response = client.post("/api/v1/teams", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _run(client: TestClient, team_id: str, gpu: int, name: str) -> None:
    response = client.post(
        "/api/v1/workloads",
        json={
            "image": "pytorch/pytorch:2.4",
            "name": name,
            "cpu": 4,
            "ram_gb": 8,
            "gpu": gpu,
            "team_id": team_id,
        },
    )
    assert response.status_code == 201, response.text


def test_borrowing_team_and_idle_lender(client: TestClient, ctx: ServiceContext) -> None:
    research = _team(
        client,
        "research",
        hierarchy={"guarantee": {"gpu": 16}, "weight": 1},
        quota={"cpu": 64, "ram_gb": None, "gpu": 32},
    )
    vision = _team(client, "vision", hierarchy={"parent_id": research, "guarantee": {"gpu": 8}})
    nlp = _team(client, "nlp", hierarchy={"guarantee": {"gpu": 16}, "weight": 1})
    for i in range(3):
        _run(client, vision, 8, f"v{i}")
    settle(ctx)
    _run(client, vision, 8, "v3")  # waits: the fleet is full

    body = client.get("/api/v1/fairshare").json()
    assert body["capacity"]["gpu"] == 32
    rows = {r["name"]: r for r in body["data"]}
    # Departments first, each followed by its teams.
    assert [r["name"] for r in body["data"]] == ["nlp", "research", "vision"]
    assert rows["vision"]["parent_id"] == research
    assert rows["vision"]["used"]["gpu"] == 24
    assert rows["vision"]["borrowed"]["gpu"] == 16
    assert rows["vision"]["demand"]["gpu"] == 32
    # v3 waits: 8 GPUs, 4 cores and 8 GB pending, in the team and its department.
    assert rows["vision"]["pending"] == {"cpu": 4, "ram_gb": 8, "storage_gb": 0, "gpu": 8}
    assert rows["research"]["pending"]["gpu"] == 8
    assert rows["nlp"]["pending"]["gpu"] == 0
    assert rows["research"]["limit"] == {"cpu": 64, "ram_gb": None, "gpu": 32}
    assert rows["vision"]["limit"] == {"cpu": None, "ram_gb": None, "gpu": None}
    for row in body["data"]:  # pending is what demand adds to usage, never negative
        for resource, demand in row["demand"].items():
            pending = row["pending"][resource]
            assert pending >= 0
            assert abs(row["used"][resource] + pending - demand) <= 0.002, (row, resource)
    assert rows["research"]["used"]["gpu"] == 24  # with its teams
    assert rows["research"]["borrowed"]["gpu"] == 8
    assert rows["nlp"]["used"]["gpu"] == 0
    assert rows["nlp"]["fair_share"]["gpu"] == 0  # no demand: its guarantee is lent
    assert rows["research"]["fair_share"]["gpu"] == 32
    assert rows["vision"]["fair_share"]["gpu"] == 32
    assert rows["nlp"]["under_guarantee"] is True
    assert rows["vision"]["under_guarantee"] is False
    assert rows["vision"]["dominant_share"] == 0.75
    assert nlp in {r["team_id"] for r in body["data"]}


def test_users_see_their_teams_and_departments(client: TestClient, ctx: ServiceContext) -> None:
    user_id = add_user(ctx, "ada@example.com", "some-pass-123")
    dept = _team(client, "dept")
    _team(
        client,
        "mine",
        hierarchy={"parent_id": dept},
        members=[{"user_id": user_id, "is_team_admin": False}],
    )
    _team(client, "other")
    user = authed_client(ctx, mint_token(ctx, user_id))
    response = user.get("/api/v1/fairshare")
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["data"]] == ["dept", "mine"]
    assert client.get("/api/v1/fairshare").json()["count"] == 3


def test_a_lender_back_under_its_guarantee_reclaims_with_a_named_reason(
    client: TestClient, ctx: ServiceContext
) -> None:
    lender = _team(client, "lender", hierarchy={"guarantee": {"gpu": 16}})
    borrower = _team(client, "borrower", hierarchy={"guarantee": {"gpu": 16}})
    for i in range(4):
        _run(client, borrower, 8, f"b{i}")
    settle(ctx)
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["borrower"]["borrowed"]["gpu"] == 16  # the lender's idle guarantee

    _run(client, lender, 2, "mine")
    settle(ctx)
    workloads = {w["name"]: w for w in client.get("/api/v1/workloads").json()["data"]}
    assert workloads["mine"]["status"] == "running", workloads["mine"]["reason"]
    preempted = [w for n, w in workloads.items() if n.startswith("b") and w["status"] != "running"]
    assert len(preempted) == 1  # minimal: one 8-GPU replica frees the two GPUs
    events = client.get(f"/api/v1/workloads/{preempted[0]['id']}/events").json()["data"]
    messages = [e["reason"] or "" for e in events]
    assert any(
        "reclaimed for team lender (under its guarantee) from borrower (above their guarantee)" in m
        for m in messages
    ), messages
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["borrower"]["used"]["gpu"] == 24
    assert rows["borrower"]["used"]["gpu"] >= 16  # never below its guarantee


def _run_pinned(client: TestClient, team_id: str, gpu: int, model: str, name: str) -> None:
    response = client.post(
        "/api/v1/workloads",
        json={
            "image": "pytorch/pytorch:2.4",
            "name": name,
            "cpu": 2,
            "ram_gb": 4,
            "gpu": gpu,
            "gpu_model": model,
            "team_id": team_id,
        },
    )
    assert response.status_code == 201, response.text


def test_a_per_model_guarantee_reclaims_that_model_for_pinned_work(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Team a holds its whole GPU guarantee (8) in A100s; 8 of it are guaranteed as H100s,
    which b holds. a's work pinned to H100 takes back one of b's H100 workloads (the
    minimal victim), although a is not under its GPU guarantee as a whole."""
    a = _team(client, "a", hierarchy={"guarantee": {"gpu": 8, "gpu_models": {"H100": 8}}})
    b = _team(client, "b")
    for i in range(2):
        _run_pinned(client, b, 8, "H100", f"b-h100-{i}")
    _run_pinned(client, b, 8, "A100", "b-a100")
    settle(ctx)
    for i in range(2):
        _run_pinned(client, a, 4, "A100", f"a-a100-{i}")
    settle(ctx)
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["a"]["used"]["gpu"] == 8
    assert rows["a"]["gpu_models"] == [
        {
            "model": "H100",
            "guarantee": 8,
            "limit": None,
            "used": 0,
            "weight": None,
            "fair_share": None,
        }
    ]

    _run_pinned(client, a, 4, "H100", "a-h100")
    settle(ctx)
    workloads = {w["name"]: w for w in client.get("/api/v1/workloads").json()["data"]}
    assert workloads["a-h100"]["status"] == "running", workloads["a-h100"]["reason"]
    evicted = [n for n, w in workloads.items() if n.startswith("b-") and w["status"] != "running"]
    assert len(evicted) == 1, evicted
    assert evicted[0].startswith("b-h100"), evicted
    events = client.get(f"/api/v1/workloads/{workloads[evicted[0]]['id']}/events").json()["data"]
    assert any("reclaimed for team a" in (e["reason"] or "") for e in events), events
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["a"]["gpu_models"] == [
        {
            "model": "H100",
            "guarantee": 8,
            "limit": None,
            "used": 4,
            "weight": None,
            "fair_share": None,
        }
    ]
    # Past its H100 guarantee nothing more is reclaimed for it.
    _run_pinned(client, a, 8, "H100", "a-h100-more")
    settle(ctx)
    workloads = {w["name"]: w for w in client.get("/api/v1/workloads").json()["data"]}
    assert workloads["a-h100-more"]["status"] == "pending"
    assert workloads["b-a100"]["status"] == "running"
    assert sorted(workloads[f"b-h100-{i}"]["status"] for i in range(2)) == ["preempted", "running"]


def test_per_model_limits_hold_a_team_and_its_department(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Department d may hold 6 H100s, its team t1 4. Work pinned to H100 past either limit
    waits with a reason naming it; unpinned work of the same team runs on another model."""
    d = _team(client, "d", hierarchy={"gpu_model_limits": {"H100": 6}})
    t1 = _team(client, "t1", hierarchy={"parent_id": d, "gpu_model_limits": {"H100": 4}})
    t2 = _team(client, "t2", hierarchy={"parent_id": d})
    _run_pinned(client, t1, 4, "H100", "t1-h100")
    _run_pinned(client, t2, 2, "H100", "t2-h100")
    settle(ctx)
    _run_pinned(client, t1, 1, "H100", "t1-h100-more")
    _run_pinned(client, t2, 1, "H100", "t2-h100-more")
    _run(client, t2, 2, "t2-any")
    settle(ctx)
    workloads = {w["name"]: w for w in client.get("/api/v1/workloads").json()["data"]}
    assert workloads["t1-h100"]["status"] == "running"
    assert workloads["t2-h100"]["status"] == "running"
    assert workloads["t1-h100-more"]["status"] == "pending"
    assert workloads["t1-h100-more"]["reason"] == (
        "team H100 limit exceeded: 4/4 GPUs in use, needs 1"
    )
    assert workloads["t2-h100-more"]["status"] == "pending"
    assert workloads["t2-h100-more"]["reason"] == (
        "department H100 limit exceeded: 6/6 GPUs in use, needs 1"
    )
    assert workloads["t2-any"]["status"] == "running", workloads["t2-any"]["reason"]
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["t1"]["gpu_models"] == [
        {"model": "H100", "guarantee": 0, "limit": 4, "used": 4, "weight": None, "fair_share": None}
    ]
    # The department's holding of the model counts its teams' (the unpinned work is not
    # on an H100).
    assert rows["d"]["gpu_models"] == [
        {"model": "H100", "guarantee": 0, "limit": 6, "used": 6, "weight": None, "fair_share": None}
    ]
    assert rows["d"]["used"]["gpu"] == 8


def test_a_model_weight_divides_freed_gpus_of_that_model(
    client: TestClient, ctx: ServiceContext
) -> None:
    """a weighs H100 3, b 1 (one weight for everything else). Both queue sixteen 1-GPU
    H100 workloads while unteamed work holds all 16 H100s; when it stops, the freed H100s
    go 12 to a and 4 to b, as the fair share of the model shown beforehand says (with one
    weight they would split 8 to 8, as a's GPU weight alone, 1, does not favour it)."""
    a = _team(client, "a", hierarchy={"gpu_model_weights": {"H100": 3}})
    b = _team(client, "b")
    for i in range(2):
        response = client.post(
            "/api/v1/workloads",
            json={"image": "x:1", "name": f"hold-{i}", "gpu": 8, "gpu_model": "H100"},
        )
        assert response.status_code == 201, response.text
    settle(ctx)
    for i in range(16):
        _run_pinned(client, a, 1, "H100", f"a-{i}")
        _run_pinned(client, b, 1, "H100", f"b-{i}")
    settle(ctx)
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["a"]["gpu_models"] == [
        {"model": "H100", "guarantee": 0, "limit": None, "used": 0, "weight": 3, "fair_share": 12}
    ]
    assert rows["b"]["gpu_models"] == [
        {"model": "H100", "guarantee": 0, "limit": None, "used": 0, "weight": None, "fair_share": 4}
    ]
    listed = client.get("/api/v1/workloads", params={"limit": 100}).json()["data"]
    holders = [w for w in listed if w["name"].startswith("hold-")]
    assert len(holders) == 2
    for workload in holders:
        stopped = client.post(f"/api/v1/workloads/{workload['id']}/stop")
        assert stopped.status_code in (200, 204), stopped.text
    settle(ctx)
    workloads = client.get("/api/v1/workloads", params={"limit": 100}).json()["data"]
    running = [w["name"] for w in workloads if w["status"] == "running"]
    assert sum(n.startswith("a-") for n in running) == 12, running
    assert sum(n.startswith("b-") for n in running) == 4, running


def test_the_queue_shows_the_fair_share_of_teams_with_work_waiting(
    client: TestClient, ctx: ServiceContext
) -> None:
    """GET /queue gives, beside the waiting work, the fair-share figures of the teams it
    belongs to and their departments (as GET /fairshare does), and of no other team; a
    user sees only their own teams' figures."""
    user = add_user(ctx, "member@example.com", "a-long-password-1")
    research = _team(client, "research", hierarchy={"guarantee": {"gpu": 16}})
    vision = _team(
        client,
        "vision",
        hierarchy={"parent_id": research, "guarantee": {"gpu": 8}},
        members=[{"user_id": user, "is_team_admin": False}],
        members_can_read=True,
    )
    _team(client, "idle", hierarchy={"guarantee": {"gpu": 8}})
    for i in range(5):
        _run(client, vision, 8, f"v{i}")
    settle(ctx)
    body = client.get("/api/v1/queue").json()
    assert {e["workload"]["name"] for e in body["data"]} == {"v4"}
    fair = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert [t["name"] for t in body["teams"]] == ["research", "vision"]
    for team in body["teams"]:
        assert team == fair[team["name"]]
    assert body["teams"][1]["borrowed"]["gpu"] == 24
    # A member of vision (which shares its work with members): the waiting work, its
    # team and its department, as /fairshare shows them to the member.
    member = authed_client(ctx, mint_token(ctx, user))
    mine = member.get("/api/v1/queue").json()
    assert [e["workload"]["name"] for e in mine["data"]] == ["v4"]
    assert [t["name"] for t in mine["teams"]] == ["research", "vision"]
    # With nothing waiting there are no team figures to give.
    [waiting] = [e["workload"] for e in body["data"]]
    assert client.post(f"/api/v1/workloads/{waiting['id']}/stop").status_code in (200, 204)
    assert client.get("/api/v1/queue").json()["teams"] == []
