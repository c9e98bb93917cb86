"""Teams and users: team admins manage their team (not its quota), team members read each
other's work when the team allows it, nobody else learns it exists; admins manage users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from factories.app import ADMIN_EMAIL, add_user, authed_client, mint_token, user_id_of
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


@dataclass
class Team:
    id: str
    lead: TestClient  # a plain user who is the team's admin
    member: TestClient
    outsider: TestClient  # a plain user in no team
    member_id: str


def _as(ctx: ServiceContext, email: str, role: str = "user") -> tuple[TestClient, str]:
    user_id = add_user(ctx, email, "some-pass-123", role=role)
    return authed_client(ctx, mint_token(ctx, user_id)), user_id


@pytest.fixture
def team(client: TestClient, ctx: ServiceContext) -> Team:
    lead, lead_id = _as(ctx, "lead@example.com")
    member, member_id = _as(ctx, "member@example.com")
    outsider, _ = _as(ctx, "outsider@example.com")
    created = client.post(
        "/api/v1/teams",
        json={
            "name": "vision",
            "members_can_read": True,
            "quota": {"gpu": 4, "cpu": 32},
            "members": [
                {"user_id": lead_id, "is_team_admin": True},
                {"user_id": member_id},
            ],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["quota"] == {"cpu": 32, "ram_gb": None, "gpu": 4}
    return Team(body["id"], lead, member, outsider, member_id)


def _workload(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/workloads", json={"image": "busybox", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_team_members_read_each_others_work_but_change_only_their_own(
    client: TestClient, team: Team
) -> None:
    work = _workload(team.member)
    assert work["team_id"] == team.id
    path = f"/api/v1/workloads/{work['id']}"
    assert team.lead.get(path).status_code == 200
    assert work["id"] in {w["id"] for w in team.lead.get("/api/v1/workloads").json()["data"]}
    assert team.lead.get(f"{path}/events").status_code == 200
    refused = team.lead.delete(path)
    assert refused.status_code == 403  # it may see it, so 403 hides nothing
    assert team.lead.post(f"{path}/stop").status_code == 403
    assert team.outsider.get(path).status_code == 404
    assert team.outsider.delete(path).status_code == 404

    closed = client.patch(f"/api/v1/teams/{team.id}", json={"members_can_read": False})
    assert closed.status_code == 200
    assert team.lead.get(path).status_code == 404
    assert team.lead.get("/api/v1/workloads").json()["count"] == 0


def test_team_admin_manages_members_and_invites_but_not_quota(
    client: TestClient, ctx: ServiceContext, team: Team
) -> None:
    invite = team.lead.post(
        "/api/v1/invites", json={"email": "newbie@example.com", "team_id": team.id}
    )
    assert invite.status_code == 201, invite.text
    operator_invite = team.lead.post(
        "/api/v1/invites",
        json={"email": "boss@example.com", "role": "operator", "team_id": team.id},
    )
    assert operator_invite.status_code == 403
    assert team.lead.post("/api/v1/invites", json={"email": "x@example.com"}).status_code == 403
    assert (
        team.member.post(
            "/api/v1/invites", json={"email": "y@example.com", "team_id": team.id}
        ).status_code
        == 422
    )  # a member, not an admin, of that team

    quota = team.lead.patch(f"/api/v1/teams/{team.id}", json={"quota": {"gpu": 64}})
    assert quota.status_code == 403
    members = team.lead.patch(
        f"/api/v1/teams/{team.id}",
        json={"members": [{"user_id": user_id_of(ctx, "lead@example.com"), "is_team_admin": True}]},
    )
    assert members.status_code == 200, members.text
    assert [m["email"] for m in members.json()["members"]] == ["lead@example.com"]
    assert team.member.get(f"/api/v1/teams/{team.id}").status_code == 404  # removed

    assert team.outsider.get(f"/api/v1/teams/{team.id}").status_code == 404
    assert team.outsider.patch(f"/api/v1/teams/{team.id}", json={"name": "x"}).status_code == 404
    assert team.outsider.get("/api/v1/teams").json()["count"] == 0
    assert client.patch(f"/api/v1/teams/{team.id}", json={"quota": None}).json()["quota"] == {
        "cpu": None,
        "ram_gb": None,
        "gpu": None,
    }


def test_workloads_count_against_a_team_the_submitter_belongs_to(
    client: TestClient, ctx: ServiceContext, team: Team
) -> None:
    other_team = client.post("/api/v1/teams", json={"name": "audio"}).json()
    refused = team.member.post(
        "/api/v1/workloads", json={"image": "busybox", "team_id": other_team["id"]}
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["team_id"]

    both = client.patch(
        f"/api/v1/teams/{other_team['id']}", json={"members": [{"user_id": team.member_id}]}
    )
    assert both.status_code == 200
    ambiguous = team.member.post("/api/v1/workloads", json={"image": "busybox"})
    assert ambiguous.status_code == 422
    assert "several teams" in ambiguous.json()["detail"]
    chosen = _workload(team.member, team_id=other_team["id"])
    assert chosen["team_id"] == other_team["id"]
    assert _workload(client, team_id=team.id)["team_id"] == team.id  # admins may name any


def test_admin_manages_users(client: TestClient, ctx: ServiceContext) -> None:
    created = client.post(
        "/api/v1/users",
        json={"email": "ops@example.com", "password": "ops-pass-123", "role": "operator"},
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert "password" not in user
    assert "password_hash" not in user
    ops = authed_client(ctx, mint_token(ctx, user["id"]))
    assert ops.get("/api/v1/audit").status_code == 200
    assert ops.get("/api/v1/users").status_code == 403

    demoted = client.patch(f"/api/v1/users/{user['id']}", json={"role": "user"})
    assert demoted.json()["role"] == "user"
    assert ops.get("/api/v1/audit").status_code == 403  # roles apply at once
    client.patch(f"/api/v1/users/{user['id']}", json={"is_active": False})
    assert ops.get("/api/v1/auth/me").status_code == 401
    assert client.delete(f"/api/v1/users/{user['id']}").status_code == 204
    assert client.get(f"/api/v1/users/{user['id']}").status_code == 404
    duplicate = client.post(
        "/api/v1/users", json={"email": ADMIN_EMAIL.upper(), "password": "whatever-123"}
    )
    assert duplicate.status_code == 409


def test_the_last_admin_stays(client: TestClient, ctx: ServiceContext) -> None:
    admin_id = user_id_of(ctx, ADMIN_EMAIL)
    assert client.patch(f"/api/v1/users/{admin_id}", json={"role": "user"}).status_code == 409
    assert client.patch(f"/api/v1/users/{admin_id}", json={"is_active": False}).status_code == 409
    assert client.delete(f"/api/v1/users/{admin_id}").status_code == 409


def test_a_user_who_owns_workloads_is_disabled_not_deleted(
    client: TestClient, ctx: ServiceContext
) -> None:
    dev, dev_id = _as(ctx, "dev@example.com")
    _workload(dev)
    refused = client.delete(f"/api/v1/users/{dev_id}")
    assert refused.status_code == 409
    assert "is_active" in refused.json()["detail"]
