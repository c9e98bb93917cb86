"""One member at a time: POST /teams/{id}/members, PATCH and DELETE
/teams/{id}/members/{user_id}. Admins add directly; a team admin invites (the user joins
by accepting); outsiders learn nothing; quotas stay an admin's."""

from __future__ import annotations

from typing import Any

from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _as(ctx: ServiceContext, email: str) -> tuple[TestClient, str]:
    user_id = add_user(ctx, email, "some-pass-123")
    return authed_client(ctx, mint_token(ctx, user_id)), user_id


def _members(team: dict[str, Any]) -> dict[str, bool]:
    return {m["email"]: m["is_team_admin"] for m in team["members"]}


def test_admins_add_change_and_remove_members(client: TestClient, ctx: ServiceContext) -> None:
    _, ada = _as(ctx, "ada@example.com")
    team = client.post("/api/v1/teams", json={"name": "ml"}).json()
    path = f"/api/v1/teams/{team['id']}/members"

    added = client.post(path, json={"user_id": ada})
    assert added.status_code == 201, added.text
    assert _members(added.json()) == {"ada@example.com": False}
    assert client.post(path, json={"user_id": ada}).status_code == 409
    unknown = client.post(path, json={"user_id": "nobody"})
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["user_id"]

    promoted = client.patch(f"{path}/{ada}", json={"is_team_admin": True})
    assert promoted.status_code == 200, promoted.text
    assert _members(promoted.json()) == {"ada@example.com": True}
    assert client.patch(f"{path}/nobody", json={"is_team_admin": True}).status_code == 404

    assert client.delete(f"{path}/{ada}").status_code == 204
    assert client.get(f"/api/v1/teams/{team['id']}").json()["members"] == []
    assert client.delete(f"{path}/{ada}").status_code == 404
    actions = [
        e["action"] for e in client.get("/api/v1/audit", params={"action": "team."}).json()["data"]
    ]
    assert actions[:3] == ["team.member_remove", "team.member_update", "team.member_add"]


def test_a_team_admin_invites_and_outsiders_learn_nothing(
    client: TestClient, ctx: ServiceContext
) -> None:
    lead, lead_id = _as(ctx, "lead@example.com")
    newcomer, newcomer_id = _as(ctx, "new@example.com")
    outsider, _ = _as(ctx, "out@example.com")
    team = client.post(
        "/api/v1/teams",
        json={"name": "ml", "members": [{"user_id": lead_id, "is_team_admin": True}]},
    ).json()
    path = f"/api/v1/teams/{team['id']}/members"

    invited = lead.post(path, json={"user_id": newcomer_id})
    assert invited.status_code == 201, invited.text
    assert _members(invited.json()) == {"lead@example.com": True}  # not a member yet
    assert [p["user_id"] for p in invited.json()["pending_invitations"]] == [newcomer_id]
    invitation = newcomer.get("/api/v1/team-invitations").json()["data"][0]
    accepted = newcomer.post(f"/api/v1/team-invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert "new@example.com" in _members(lead.get(f"/api/v1/teams/{team['id']}").json())

    # A plain member may not manage; an outsider does not even learn the team exists.
    assert newcomer.delete(f"{path}/{lead_id}").status_code == 403
    assert outsider.post(path, json={"user_id": newcomer_id}).status_code == 404
    assert outsider.delete(f"{path}/{newcomer_id}").status_code == 404
    assert lead.delete(f"{path}/{newcomer_id}").status_code == 204
    assert _members(client.get(f"/api/v1/teams/{team['id']}").json()) == {"lead@example.com": True}
    # Quotas stay an admin's.
    refused = lead.patch(f"/api/v1/teams/{team['id']}", json={"quota": {"gpu": 9}})
    assert refused.status_code == 403
