"""POST /api/v1/workloads/plan (issue 21): where a request would go now, whom it would
preempt (only what the caller may read), or why it waits, with its estimated start; it
writes nothing. The property: a plan never writes, and on an unchanged world the next
cycle after submitting the same body does what the plan said."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from factories.app import (
    add_user,
    authed_client,
    make_context,
    make_settings,
    mint_token,
    settle,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.store.base import Base


def _rows(ctx: ServiceContext) -> dict[str, list[Any]]:
    """Every row of every table, in a stable order: what "writes nothing" compares."""
    with ctx.db.read() as session:
        return {
            name: sorted(
                (
                    tuple(str(v) for v in row)
                    for row in session.execute(text(f"SELECT * FROM {name}"))
                ),
            )
            for name in Base.metadata.tables
        }


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/workloads", json={"image": "x", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _plan(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/workloads/plan", json={"image": "x", **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_plan_places_preempts_or_waits_and_writes_nothing(
    client: TestClient, ctx: ServiceContext
) -> None:
    fill = [
        _create(client, name=f"fill-{i}", gpu=8, gpu_model="H100", priority=1, duration_s=600)
        for i in range(2)
    ]
    settle(ctx)
    before = _rows(ctx)

    placed = _plan(client, gpu=8, gpu_model="A100")
    assert placed["starts_now"] is True
    assert placed["code"] is None
    assert [p["replica"] for p in placed["placements"]] == [0]
    assert placed["placements"][0]["server_name"].startswith("a100-node")
    assert sorted(placed["placements"][0]["gpu_indices"]) == list(range(8))

    preempting = _plan(client, gpu=8, gpu_model="H100", priority=5)
    assert preempting["starts_now"] is True
    assert [v["workload_id"] for v in preempting["preempts"]] in (
        [fill[0]["id"]],
        [fill[1]["id"]],
    )
    assert preempting["preempts_hidden"] == 0

    waits = _plan(client, gpu=8, gpu_model="H100", priority=1, preemptible=False)
    assert waits["starts_now"] is False
    assert waits["placements"] == []
    assert waits["code"]
    assert waits["reason"]
    assert waits["estimated_start"] is not None  # the fillers declared 600 s

    assert _rows(ctx) == before  # three plans, nothing written


def test_a_plan_names_only_victims_the_caller_may_read_and_is_checked_as_a_submit(
    client: TestClient, ctx: ServiceContext
) -> None:
    for i in range(2):
        _create(client, name=f"admins-{i}", gpu=8, gpu_model="H100", priority=1)
    settle(ctx)
    operator_id = add_user(ctx, "ops@example.com", "some-pass-123", role="operator")
    operator = authed_client(ctx, mint_token(ctx, operator_id))
    plan = _plan(operator, gpu=8, gpu_model="H100", priority=5)
    assert plan["starts_now"] is True
    assert (len(plan["preempts"]), plan["preempts_hidden"]) in ((1, 0), (0, 1))

    user_id = add_user(ctx, "user@example.com", "some-pass-123")
    user = authed_client(ctx, mint_token(ctx, user_id))
    hidden = _plan(user, gpu=8, gpu_model="H100", priority=3)
    assert hidden["preempts"] == []
    assert hidden["preempts_hidden"] == 1  # counted, never named

    before = _rows(ctx)
    refused = user.post("/api/v1/workloads/plan", json={"image": "x", "cpu": 65})
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["cpu"]
    never = client.post(
        "/api/v1/workloads/plan", json={"image": "x", "gpu": 1, "gpu_model": "B200"}
    )
    assert never.status_code == 422, never.text
    assert _rows(ctx) == before
    anonymous = TestClient(client.app).post("/api/v1/workloads/plan", json={"image": "x"})
    assert anonymous.status_code == 401


requests = st.fixed_dictionaries(
    {
        "gpu": st.sampled_from([0, 0.5, 1, 2, 4, 8]),
        "cpu": st.sampled_from([1, 8, 48]),
        "priority": st.integers(1, 5),
        "replicas": st.integers(1, 3),
        "preemptible": st.booleans(),
    },
    optional={"gpu_model": st.sampled_from(["H100", "A100"])},
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(world=st.lists(requests, min_size=0, max_size=6), request=requests)
def test_a_plan_never_writes_and_the_next_cycle_does_what_it_said(
    world: list[dict[str, Any]], request: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = make_context(make_settings(Path(tmp) / "data", None))
        try:
            client = authed_client(ctx)
            for body in world:
                if body["gpu"] == 0:
                    body = {k: v for k, v in body.items() if k != "gpu_model"}
                _create(client, **body)
            settle(ctx)
            body = (
                request
                if request["gpu"]
                else {k: v for k, v in request.items() if k != "gpu_model"}
            )
            before = _rows(ctx)
            plan = _plan(client, **body)
            assert _rows(ctx) == before

            submitted = _create(client, **body)
            run_scheduling_cycle(ctx)
            after = client.get(f"/api/v1/workloads/{submitted['id']}").json()
            if plan["starts_now"]:
                assert after["status"] in ("running", "scheduled", "starting"), after
                got = sorted(
                    (p["replica"], p["server_id"], sorted(p["gpu_indices"]))
                    for p in after["placements"]
                )
                want = sorted(
                    (p["replica"], p["server_id"], sorted(p["gpu_indices"]))
                    for p in plan["placements"]
                )
                assert got == want
            else:
                assert after["status"] == "pending", after
                assert after["reason_code"] == plan["code"]
        finally:
            ctx.db.dispose()
