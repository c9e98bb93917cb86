"""The priority policy (issue 21): each role, and each team's work, has a highest priority
it may use; a submit or PATCH above it is a 422 naming ``priority`` and the limit, and
writes nothing. Runs on SQLite and PostgreSQL, with the shipped defaults (users 3,
operators and admins 5), not the permissive test default of factories/app.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import add_user, authed_client, make_context, make_settings, mint_token
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpuyard.services.context import ServiceContext


@pytest.fixture
def ctx(tmp_path: Path, database_url: str | None) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", database_url, max_priority_user=3))
    yield context
    context.db.dispose()


def _as(ctx: ServiceContext, email: str, role: str = "user") -> tuple[TestClient, str]:
    user_id = add_user(ctx, email, "some-pass-123", role=role)
    return authed_client(ctx, mint_token(ctx, user_id)), user_id


def _count(ctx: ServiceContext, table: str) -> int:
    with ctx.db.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _submit(client: TestClient, **body: Any) -> Any:
    return client.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1, **body})


def _priority_error(response: Any) -> str:
    assert response.status_code == 422, response.text
    messages = [e["message"] for e in response.json()["errors"] if e["field"] == "priority"]
    assert len(messages) == 1, response.text
    return str(messages[0])


def test_a_plain_user_is_capped_at_3_and_operators_at_5(ctx: ServiceContext) -> None:
    user, _ = _as(ctx, "user@example.com")
    operator, _ = _as(ctx, "operator@example.com", role="operator")
    before = _count(ctx, "workloads")

    message = _priority_error(_submit(user, priority=5))
    assert "user role" in message
    assert "(3)" in message
    assert _count(ctx, "workloads") == before  # nothing written on refusal
    planned = user.post("/api/v1/workloads/plan", json={"image": "busybox", "priority": 5})
    assert "(3)" in _priority_error(planned)  # a plan is checked as a submit is

    accepted = _submit(user, priority=3)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["priority"] == 3
    at_top = _submit(operator, priority=5)
    assert at_top.status_code == 201, at_top.text
    assert _count(ctx, "workloads") == before + 2


def test_patch_above_the_cap_is_refused_and_changes_nothing(ctx: ServiceContext) -> None:
    user, _ = _as(ctx, "user@example.com")
    created = _submit(user, priority=2)
    assert created.status_code == 201, created.text
    path = f"/api/v1/workloads/{created.json()['id']}"

    message = _priority_error(user.patch(path, json={"priority": 4}))
    assert "(3)" in message
    assert user.get(path).json()["priority"] == 2
    lowered = user.patch(path, json={"priority": 1})
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["priority"] == 1
    # Preemptibility is separate: a capped user may still change it.
    assert user.patch(path, json={"preemptible": False}).json()["preemptible"] is False


def test_a_team_cap_lowers_the_roles_for_its_work_and_only_admins_set_it(
    ctx: ServiceContext, client: TestClient
) -> None:
    lead, lead_id = _as(ctx, "lead@example.com")
    member, member_id = _as(ctx, "member@example.com")
    created = client.post(
        "/api/v1/teams",
        json={
            "name": "interns",
            "max_priority": 2,
            "members": [{"user_id": lead_id, "is_team_admin": True}, {"user_id": member_id}],
        },
    )
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["max_priority"] == 2
    team_path = f"/api/v1/teams/{team['id']}"

    before = _count(ctx, "workloads")
    message = _priority_error(_submit(member, priority=3))
    assert "'interns'" in message
    assert "(2)" in message
    # The team's cap holds whoever submits for it, admins too.
    assert "(2)" in _priority_error(_submit(client, priority=5, team_id=team["id"]))
    # Both caps broken at once: one finding, naming the lower.
    assert "(2)" in _priority_error(_submit(member, priority=5))
    assert _count(ctx, "workloads") == before
    # The session says both caps, so a form offers only what would be accepted.
    me = member.get("/api/v1/auth/me").json()
    assert me["max_priority"] == 3
    assert [(t["team_name"], t["max_priority"]) for t in me["teams"]] == [("interns", 2)]
    assert client.get("/api/v1/auth/me").json()["max_priority"] == 5

    work = _submit(member, priority=2)
    assert work.status_code == 201, work.text
    assert work.json()["team_id"] == team["id"]
    work_path = f"/api/v1/workloads/{work.json()['id']}"
    assert "'interns'" in _priority_error(client.patch(work_path, json={"priority": 4}))

    refused = lead.patch(team_path, json={"max_priority": 5})
    assert refused.status_code == 403, refused.text
    assert client.get(team_path).json()["max_priority"] == 2

    lifted = client.patch(team_path, json={"max_priority": None})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["max_priority"] is None
    assert _submit(member, priority=3).status_code == 201
    assert "user role" in _priority_error(_submit(member, priority=4))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("bad", [0, 6, -1, 10**12, "high", 2.5, True])
def test_a_hostile_team_max_priority_is_a_422_naming_it(client: TestClient, bad: Any) -> None:
    response = client.post("/api/v1/teams", json={"name": "t", "max_priority": bad})
    assert response.status_code == 422, response.text
    assert "max_priority" in response.text
    assert client.get("/api/v1/teams").json()["count"] == 0
