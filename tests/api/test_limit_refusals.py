"""Refuse what can never run within its limits (issue 21): a submit (or plan) whose own
size (replicas x per replica) is past a limit of its team, its department, a per-GPU-model
limit covering every model it accepts, or the default quota of users in no team is a 422
naming the field and the limit; nothing is written. Past a limit only with the team's
current usage, it is accepted and waits with the ``quota`` reason. A resize in place past
a limit alone is a 422; past it with the team's other work, a 409 that changes nothing
(the workload keeps running at its size); shrinking is always allowed. SQLite and
PostgreSQL (the default quota: tests/api/test_teamless_quota.py)."""

from __future__ import annotations

from typing import Any

import pytest
from factories.app import settle
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpuyard.services.context import ServiceContext

#: The tables a refused submit or resize must leave as they were.
_TABLES = ("workloads", "allocations", "workload_events", "audit_events")


def _rows(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.read() as session:
        return {
            t: int(session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in _TABLES
        }


def _team(client: TestClient, name: str, **body: Any) -> str:
    response = client.post("/api/v1/teams", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _submit(client: TestClient, team_id: str | None, name: str, **body: Any) -> str:
    response = client.post(
        "/api/v1/workloads", json={"image": "x", "name": name, "team_id": team_id, **body}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _refusal(response: Any, status: int = 422) -> dict[str, str]:
    """{field: message} of a refusal with ``status``."""
    assert response.status_code == status, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


#: (team set-up, request body, field named, words of the message)
_ALONE: list[Any] = [
    pytest.param(
        {"quota": {"gpu": 4}},
        {"gpu": 8},
        "gpu",
        "team ml's GPU limit is 4 GPUs; this asks 8 GPUs",
        id="team GPU limit",
    ),
    pytest.param(
        {"quota": {"cpu": 4}},
        {"cpu": 6},
        "cpu",
        "team ml's cpu limit is 4 cores; this asks 6 cores",
        id="team cpu limit",
    ),
    pytest.param(
        {"quota": {"ram_gb": 16}},
        {"cpu": 1, "ram_gb": 24},
        "ram_gb",
        "team ml's memory limit is 16 GB; this asks 24 GB",
        id="team memory limit",
    ),
    pytest.param(
        {"quota": {"gpu": 4}},
        {"gpu": 2, "replicas": 3, "gang": True},
        "gpu",
        "this asks 6 GPUs (3 replicas x 2)",
        id="gang counts every replica",
    ),
    pytest.param(
        {"quota": {"gpu": 4}},
        {"gpu": 2, "replicas": 3},
        "gpu",
        "this asks 6 GPUs (3 replicas x 2)",
        id="replicas count together",
    ),
    pytest.param(
        {"department": {"quota": {"gpu": 4}}},
        {"gpu": 6},
        "gpu",
        "department research's GPU limit is 4 GPUs; this asks 6 GPUs",
        id="department limit",
    ),
    pytest.param(
        {"hierarchy": {"gpu_model_limits": {"H100": 0}}},
        {"gpu": 1, "gpu_model": "H100"},
        "gpu_model",
        "team ml's H100 limit is 0 GPUs; this asks 1 GPU",
        id="per-model limit 0",
    ),
    pytest.param(
        {"hierarchy": {"gpu_model_limits": {"H100": 4}}},
        {"gpu": 8, "gpu_model": "NVIDIA H100 80GB"},
        "gpu_model",
        "team ml's H100 limit is 4 GPUs; this asks 8 GPUs",
        id="a model limit covers its variants",
    ),
    pytest.param(
        {"hierarchy": {"gpu_model_limits": {"H100": 4, "A100": 2}}},
        {"gpu": 6, "gpu_model": "A100|H100"},
        "gpu_model",
        "every model it accepts is limited below what it asks: team ml's A100 limit is "
        "2 GPUs, team ml's H100 limit is 4 GPUs; this asks 6 GPUs",
        id="every accepted model limited",
    ),
    pytest.param(
        {"hierarchy": {"gpu_model_limits": {"H100 80GB": 0}}},
        {"gpu": 2, "gpu_model": "H100"},
        "gpu_model",
        "every GPU model it could use in the fleet counts against team ml's H100 80GB limit "
        "of 0 GPUs; this asks 2 GPUs",
        id="every H100 of the fleet is of a limited variant",
    ),
    pytest.param(
        {"hierarchy": {"gpu_model_limits": {"H100": 1, "A100": 0}}},
        {"gpu": 2},
        "gpu",
        "every GPU model it could use in the fleet is limited below what it asks: team ml's "
        "A100 limit is 0 GPUs, team ml's H100 limit is 1 GPU; this asks 2 GPUs",
        id="unpinned work with every model of the fleet limited",
    ),
    pytest.param(
        {"department": {"hierarchy": {"gpu_model_limits": {"A100": 1}}}},
        {"gpu": 2, "gpu_model": "A100"},
        "gpu_model",
        "department research's A100 limit is 1 GPU; this asks 2 GPUs",
        id="department per-model limit",
    ),
]


def _ml(client: TestClient, setup: dict[str, Any]) -> str:
    """Team ml as ``setup`` says, under department research when it has one."""
    body = {k: v for k, v in setup.items() if k != "department"}
    if "department" in setup:
        research = _team(client, "research", **setup["department"])
        hierarchy = {**body.get("hierarchy", {}), "parent_id": research}
        body["hierarchy"] = hierarchy
    return _team(client, "ml", **body)


@pytest.mark.parametrize(("setup", "body", "field", "says"), _ALONE)
def test_work_past_a_limit_on_its_own_is_refused_at_submit_and_plan(
    client: TestClient,
    ctx: ServiceContext,
    setup: dict[str, Any],
    body: dict[str, Any],
    field: str,
    says: str,
) -> None:
    team = _ml(client, setup)
    before = _rows(ctx)
    request = {"image": "x", "team_id": team, **body}
    refused = _refusal(client.post("/api/v1/workloads", json=request))
    assert list(refused) == [field], refused
    assert says in refused[field], refused[field]
    assert "could never run" in refused[field]
    assert _refusal(client.post("/api/v1/workloads/plan", json=request)) == refused
    assert _rows(ctx) == before


@pytest.mark.parametrize(
    ("limits", "body"),
    [
        pytest.param({"H100": 0}, {"gpu": 2}, id="unpinned work may land on an unlimited model"),
        pytest.param(
            {"H100": 0}, {"gpu": 2, "gpu_model": "A100|H100"}, id="one accepted model has room"
        ),
        pytest.param({"H100": 4}, {"gpu": 2, "replicas": 2, "gpu_model": "H100"}, id="at it"),
    ],
)
def test_work_that_could_run_within_its_limits_is_accepted_and_runs(
    client: TestClient, ctx: ServiceContext, limits: dict[str, float], body: dict[str, Any]
) -> None:
    team = _team(client, "ml", hierarchy={"gpu_model_limits": limits})
    workload = _submit(client, team, "fits", **body)
    settle(ctx)
    shown = client.get(f"/api/v1/workloads/{workload}").json()
    assert shown["status"] == "running", shown["reason"]


def test_past_a_limit_only_with_the_teams_usage_waits_with_the_quota_reason(
    client: TestClient, ctx: ServiceContext
) -> None:
    team = _team(client, "ml", quota={"gpu": 4})
    _submit(client, team, "holder", gpu=3)
    settle(ctx)
    plan = client.post("/api/v1/workloads/plan", json={"image": "x", "team_id": team, "gpu": 2})
    assert plan.status_code == 200, plan.text
    assert plan.json()["code"] == "quota"
    waits = _submit(client, team, "waits", gpu=2)
    settle(ctx)
    shown = client.get(f"/api/v1/workloads/{waits}").json()
    assert (shown["status"], shown["reason_code"]) == ("pending", "quota")
    assert "team quota exceeded: gpu 3/4 in use, needs 2" in shown["reason"]


def test_a_limit_lowered_after_submission_leaves_queued_work_waiting(
    client: TestClient, ctx: ServiceContext
) -> None:
    team = _team(client, "ml", quota={"gpu": 4})
    holder = _submit(client, team, "holder", gpu=4)
    queued = _submit(client, team, "queued", gpu=4)
    settle(ctx)
    lowered = client.patch(f"/api/v1/teams/{team}", json={"quota": {"gpu": 2}})
    assert lowered.status_code == 200, lowered.text
    settle(ctx)
    shown = client.get(f"/api/v1/workloads/{queued}").json()
    assert (shown["status"], shown["reason_code"]) == ("pending", "quota")
    # Running work past the new limit may still shrink what the limit does not judge.
    assert client.patch(f"/api/v1/workloads/{holder}", json={"cpu": 0.5}).status_code == 200
    assert client.patch(f"/api/v1/workloads/{holder}", json={"gpu": 3}).status_code == 200
    # Growing it again is judged by the new limit.
    regrow = _refusal(client.patch(f"/api/v1/workloads/{holder}", json={"gpu": 4}))
    assert "team ml's GPU limit is 2 GPUs" in regrow["gpu"]


def _running(client: TestClient, workload_id: str) -> dict[str, Any]:
    shown = dict(client.get(f"/api/v1/workloads/{workload_id}").json())
    assert shown["status"] == "running", shown["reason"]
    return shown


def _allocations(ctx: ServiceContext, workload_id: str) -> list[tuple[Any, ...]]:
    with ctx.db.read() as session:
        rows = session.execute(
            text(
                "SELECT server_id, cpu_milli, ram_mib, gpu_milli, gpu_allocation "
                "FROM allocations WHERE workload_id = :w ORDER BY replica"
            ),
            {"w": workload_id},
        )
        return [tuple(str(v) for v in row) for row in rows]


def _assert_unchanged(
    client: TestClient, ctx: ServiceContext, workload_id: str, was: dict[str, Any], rows: Any
) -> None:
    """The workload still runs at its old size where it ran, and nothing was written."""
    now = _running(client, workload_id)
    for kept in ("cpu", "ram_gb", "gpu", "gpu_model", "placements", "updated_at"):
        assert now[kept] == was[kept], kept
    assert _allocations(ctx, workload_id) == rows[0]
    assert _rows(ctx) == rows[1]


def test_resize_past_a_team_limit_alone_is_422_with_its_usage_409_and_shrinks_pass(
    client: TestClient, ctx: ServiceContext
) -> None:
    team = _team(client, "ml", quota={"gpu": 4, "cpu": 8})
    grows = _submit(client, team, "grows", gpu=2, cpu=2)
    _submit(client, team, "other", gpu=2, cpu=2)
    settle(ctx)
    was = _running(client, grows)
    path = f"/api/v1/workloads/{grows}"
    rows = (_allocations(ctx, grows), _rows(ctx))

    alone = _refusal(client.patch(path, json={"gpu": 5}))
    assert list(alone) == ["gpu"]
    assert "team ml's GPU limit is 4 GPUs; this asks 5 GPUs" in alone["gpu"]
    _assert_unchanged(client, ctx, grows, was, rows)

    with_usage = _refusal(client.patch(path, json={"gpu": 3, "priority": 4}), 409)
    assert with_usage == {
        "gpu": "team ml would hold 5 GPUs, over team ml's GPU limit of 4 (its other work "
        "holds 2; this would hold 3)"
    }
    conflict = client.patch(path, json={"cpu": 7})
    assert conflict.status_code == 409
    assert "team ml would hold 9 cores, over team ml's cpu limit of 8" in conflict.json()["detail"]
    assert "keeps running at its size" in conflict.json()["detail"]
    _assert_unchanged(client, ctx, grows, was, rows)
    assert was["priority"] == _running(client, grows)["priority"]

    shrunk = client.patch(path, json={"gpu": 1, "cpu": 6})  # cpu within: 6 + 2 <= 8
    assert shrunk.status_code == 200, shrunk.text
    settle(ctx)
    after = client.get(path).json()
    assert (after["gpu"], after["cpu"]) == (1, 6)
    assert after["status"] == "running", after["reason"]


def test_a_pending_resize_past_a_limit_alone_is_422_and_with_usage_waits(
    client: TestClient, ctx: ServiceContext
) -> None:
    team = _team(client, "ml", quota={"gpu": 4})
    _submit(client, team, "holder", gpu=4)
    queued = _submit(client, team, "queued", gpu=1)
    settle(ctx)
    path = f"/api/v1/workloads/{queued}"
    before = _rows(ctx)
    alone = _refusal(client.patch(path, json={"gpu": 6}))
    assert "team ml's GPU limit is 4 GPUs; this asks 6 GPUs" in alone["gpu"]
    assert _rows(ctx) == before
    assert client.get(path).json()["gpu"] == 1

    grown = client.patch(path, json={"gpu": 3})  # within the limit alone: it waits
    assert grown.status_code == 200, grown.text
    settle(ctx)
    shown = client.get(path).json()
    assert (shown["status"], shown["reason_code"], shown["gpu"]) == ("pending", "quota", 3)


def test_resize_past_a_department_limit_with_its_teams_usage_is_409(
    client: TestClient, ctx: ServiceContext
) -> None:
    research = _team(client, "research", quota={"gpu": 4})
    ml = _team(client, "ml", hierarchy={"parent_id": research})
    vision = _team(client, "vision", hierarchy={"parent_id": research})
    grows = _submit(client, ml, "grows", gpu=2)
    _submit(client, vision, "other", gpu=2)
    settle(ctx)
    was = _running(client, grows)
    rows = (_allocations(ctx, grows), _rows(ctx))
    path = f"/api/v1/workloads/{grows}"
    conflict = _refusal(client.patch(path, json={"gpu": 3}), 409)
    assert conflict["gpu"].startswith(
        "department research (with its teams) would hold 5 GPUs, over department "
        "research's GPU limit of 4"
    )
    alone = _refusal(client.patch(path, json={"gpu": 6}))
    assert "department research's GPU limit is 4 GPUs" in alone["gpu"]
    _assert_unchanged(client, ctx, grows, was, rows)


def test_a_departments_own_resize_counts_its_teams_usage(
    client: TestClient, ctx: ServiceContext
) -> None:
    """research may hold 4 GPUs; its team ml holds 2: research's own 2-GPU workload may
    not grow to 3 (5 in all), as the scheduler would not place it either."""
    research = _team(client, "research", quota={"gpu": 4})
    ml = _team(client, "ml", hierarchy={"parent_id": research})
    _submit(client, ml, "team-work", gpu=2)
    grows = _submit(client, research, "own-work", gpu=2)
    settle(ctx)
    was = _running(client, grows)
    rows = (_allocations(ctx, grows), _rows(ctx))
    conflict = _refusal(client.patch(f"/api/v1/workloads/{grows}", json={"gpu": 3}), 409)
    assert "would hold 5 GPUs" in conflict["gpu"]
    assert "its other work holds 2; this would hold 3" in conflict["gpu"]
    _assert_unchanged(client, ctx, grows, was, rows)


def test_resize_past_a_per_model_limit_alone_is_422_and_with_usage_409(
    client: TestClient, ctx: ServiceContext
) -> None:
    team = _team(client, "ml", hierarchy={"gpu_model_limits": {"H100": 4}})
    grows = _submit(client, team, "grows", gpu=2, gpu_model="H100")
    _submit(client, team, "other", gpu=2, gpu_model="H100")
    # Work on another model does not count against the H100 limit.
    _submit(client, team, "elsewhere", gpu=4, gpu_model="A100")
    settle(ctx)
    was = _running(client, grows)
    rows = (_allocations(ctx, grows), _rows(ctx))
    path = f"/api/v1/workloads/{grows}"
    alone = _refusal(client.patch(path, json={"gpu": 5}))
    assert alone == {
        "gpu_model": "team ml's H100 limit is 4 GPUs; this asks 5 GPUs, so it could never "
        "run within it"
    }
    conflict = _refusal(client.patch(path, json={"gpu": 3}), 409)
    assert conflict["gpu"].startswith(
        "team ml would hold 5 GPUs, over team ml's H100 limit of 4 (its other work holds 2"
    )
    _assert_unchanged(client, ctx, grows, was, rows)
    shrunk = client.patch(path, json={"gpu": 1})
    assert shrunk.status_code == 200, shrunk.text
    assert client.get(path).json()["gpu"] == 1


def test_a_launch_from_the_catalog_is_judged_with_the_images_defaults(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The catalog's defaults fill the request before the limits judge it."""
    team = _team(client, "ml", quota={"gpu": 2})
    image = client.post(
        "/api/v1/images",
        json={"name": "trainer", "reference": "pytorch/pytorch:2.4", "type": "python", "gpu": 4},
    )
    assert image.status_code == 201, image.text
    before = _rows(ctx)
    launch = {"image_id": image.json()["id"], "team_id": team}
    refused = _refusal(client.post("/api/v1/workloads", json=launch))
    assert "team ml's GPU limit is 2 GPUs; this asks 4 GPUs" in refused["gpu"]
    assert _rows(ctx) == before
    smaller = client.post("/api/v1/workloads", json={**launch, "gpu": 2})
    assert smaller.status_code == 201, smaller.text
