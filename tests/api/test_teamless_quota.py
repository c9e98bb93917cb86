"""A default quota for users in no team (issue 21): with ``teamless_quota_*`` set, each
such user's work is held to it by the scheduler as a team's is, the reason naming it;
admins are exempt, and a team's member counts against the team, not this. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import add_user, authed_client, make_context, make_settings, mint_token, settle
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


@pytest.fixture
def ctx(tmp_path: Path, database_url: str | None) -> Iterator[ServiceContext]:
    settings = make_settings(tmp_path / "data", database_url, teamless_quota_gpu=2)
    context = make_context(settings)
    yield context
    context.db.dispose()


def _submit(client: TestClient, name: str, **body: Any) -> str:
    response = client.post(
        "/api/v1/workloads", json={"image": "x", "name": name, "gpu": 1, "cpu": 1, **body}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_users_in_no_team_are_held_to_the_default_quota_and_admins_are_not(
    ctx: ServiceContext, client: TestClient
) -> None:
    alice = authed_client(ctx, mint_token(ctx, add_user(ctx, "alice@example.com", "pw-123456")))
    bob_id = add_user(ctx, "bob@example.com", "pw-123456")
    bob = authed_client(ctx, mint_token(ctx, bob_id))
    team = client.post("/api/v1/teams", json={"name": "vision", "members": [{"user_id": bob_id}]})
    assert team.status_code == 201, team.text

    alices = [_submit(alice, f"alice-{i}") for i in range(3)]
    admins = [_submit(client, f"admin-{i}") for i in range(3)]
    bobs = [_submit(bob, f"bob-{i}") for i in range(3)]  # his team has no quota
    settle(ctx)

    def status(workload_id: str) -> dict[str, Any]:
        return dict(client.get(f"/api/v1/workloads/{workload_id}").json())

    alice_states = [status(w) for w in alices]
    assert sorted(w["status"] for w in alice_states) == ["pending", "running", "running"]
    (waiting,) = [w for w in alice_states if w["status"] == "pending"]
    assert waiting["reason_code"] == "quota"
    assert "personal quota (users in no team)" in waiting["reason"]
    assert "gpu 2/2 in use" in waiting["reason"]
    assert [status(w)["status"] for w in admins] == ["running"] * 3
    assert [status(w)["status"] for w in bobs] == ["running"] * 3

    # Her quota comes back when her work ends.
    running = next(w for w in alice_states if w["status"] == "running")
    assert alice.post(f"/api/v1/workloads/{running['id']}/stop").status_code == 200
    settle(ctx)
    assert status(waiting["id"])["status"] == "running"


def test_without_the_setting_users_in_no_team_are_unlimited(tmp_path: Path) -> None:
    context = make_context(make_settings(tmp_path / "plain", None))
    try:
        carol = add_user(context, "carol@example.com", "pw-123456")
        api = authed_client(context, mint_token(context, carol))
        ids = [_submit(api, f"carol-{i}") for i in range(3)]
        settle(context)
        assert [api.get(f"/api/v1/workloads/{w}").json()["status"] for w in ids] == ["running"] * 3
    finally:
        context.db.dispose()


def test_work_past_the_default_quota_on_its_own_is_refused_and_resizes_respect_it(
    ctx: ServiceContext, client: TestClient
) -> None:
    """Issue 21: 3 GPUs can never run within a default quota of 2 (422 at submit, plan
    and resize, nothing written); growing past it with the owner's other work is a 409
    that leaves the workload running at its size. Admins are exempt."""
    alice = authed_client(ctx, mint_token(ctx, add_user(ctx, "alice@example.com", "pw-123456")))
    body = {"image": "x", "name": "big", "gpu": 3, "cpu": 1}
    before = client.get("/api/v1/workloads").json()["count"]
    for path in ("/api/v1/workloads", "/api/v1/workloads/plan"):
        refused = alice.post(path, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            {
                "field": "gpu",
                "message": "the default GPU quota of users in no team is 2 GPUs; this asks "
                "3 GPUs, so it could never run within it",
            }
        ]
    gang = alice.post("/api/v1/workloads", json={**body, "gpu": 1, "replicas": 3, "gang": True})
    assert gang.status_code == 422
    assert "this asks 3 GPUs (3 replicas x 1)" in gang.json()["detail"]
    assert client.get("/api/v1/workloads").json()["count"] == before
    assert client.post("/api/v1/workloads", json=body).status_code == 201  # an admin's

    grows = _submit(alice, "grows")
    _submit(alice, "other")
    settle(ctx)
    path = f"/api/v1/workloads/{grows}"
    was = alice.get(path).json()
    assert was["status"] == "running"
    conflict = alice.patch(path, json={"gpu": 2})
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["errors"][0]["message"] == (
        "the owner's work in no team would hold 3 GPUs, over the default GPU quota of users "
        "in no team of 2 (its other work holds 1; this would hold 2)"
    )
    assert alice.patch(path, json={"gpu": 3}).status_code == 422
    now = alice.get(path).json()
    assert (now["status"], now["gpu"], now["placements"]) == ("running", 1, was["placements"])
