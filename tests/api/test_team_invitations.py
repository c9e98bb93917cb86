"""Joining a team takes consent: a team admin who lists a user invites them; only the
invited user accepts or declines; only an admin adds members directly.

The attack these tests close: an ordinary user who runs a team "adds" a victim, so that
the victim's later work lands in the team where the attacker can read it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from factories.app import add_user, authed_client, mint_token
from factories.clock import ManualClock
from fastapi.testclient import TestClient

from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.errors import NotFound
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity import team_invitations

LONG_SESSION_MINUTES = 60 * 24 * 30  # outlives the clock moves below
WEEK_S = 7 * 24 * 3600


@dataclass
class World:
    team_id: str
    admin: TestClient  # the global admin
    lead: TestClient  # an ordinary user, admin of the team
    member: TestClient  # a plain member of the team
    victim: TestClient  # a user in no team, whom the lead wants in
    outsider: TestClient
    operator: TestClient
    lead_id: str
    member_id: str
    victim_id: str


def _as(
    admin: TestClient, ctx: ServiceContext, email: str, role: str = "user"
) -> tuple[TestClient, str]:
    """A client signed in as a new user, on the admin client's app (one app for the
    world's six clients: building one per client was most of each test's time)."""
    user_id = add_user(ctx, email, "some-pass-123", role=role)
    token = mint_token(ctx, user_id, minutes=LONG_SESSION_MINUTES)
    return authed_client(ctx, token, app=admin.app), user_id


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> World:
    ctx.clock = ManualClock(datetime.now(UTC))
    lead, lead_id = _as(client, ctx, "lead@example.com")
    member, member_id = _as(client, ctx, "member@example.com")
    victim, victim_id = _as(client, ctx, "victim@example.com")
    outsider, _ = _as(client, ctx, "outsider@example.com")
    operator, _ = _as(client, ctx, "ops@example.com", role="operator")
    created = client.post(
        "/api/v1/teams",
        json={
            "name": "vision",
            "members_can_read": True,
            "members": [{"user_id": lead_id, "is_team_admin": True}, {"user_id": member_id}],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["pending_invitations"] == []
    return World(
        created.json()["id"],
        client,
        lead,
        member,
        victim,
        outsider,
        operator,
        lead_id,
        member_id,
        victim_id,
    )


def _members(w: World, *extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The team's current members, plus ``extra``: a PATCH body's member list."""
    return [
        {"user_id": w.lead_id, "is_team_admin": True},
        {"user_id": w.member_id},
        *extra,
    ]


def _invite_victim(w: World, is_team_admin: bool = False) -> dict[str, Any]:
    """The lead lists the victim; returns the PATCH response's team."""
    extra = {"user_id": w.victim_id, "is_team_admin": is_team_admin}
    response = w.lead.patch(f"/api/v1/teams/{w.team_id}", json={"members": _members(w, extra)})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _my_invitations(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/team-invitations")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _team_ids(client: TestClient) -> list[str]:
    return [t["team_id"] for t in client.get("/api/v1/auth/me").json()["teams"]]


def _submit(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/workloads", json={"image": "busybox", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _audit_actions(admin: TestClient) -> list[str]:
    events = admin.get("/api/v1/audit", params={"action": "team.", "limit": 50}).json()["data"]
    return [e["action"] for e in events]


def test_a_team_admin_cannot_add_a_user_without_consent(world: World) -> None:
    w = world
    team = _invite_victim(w)
    assert [m["email"] for m in team["members"]] == ["lead@example.com", "member@example.com"]
    assert [(i["email"], i["user_id"]) for i in team["pending_invitations"]] == [
        ("victim@example.com", w.victim_id)
    ]
    assert _team_ids(w.victim) == []
    assert w.victim.get(f"/api/v1/teams/{w.team_id}").status_code == 404

    work = _submit(w.victim, env={"TOKEN": "s3cret"})
    assert work["team_id"] is None  # not the attacker's team
    path = f"/api/v1/workloads/{work['id']}"
    assert w.lead.get(path).status_code == 404
    assert w.lead.get(f"{path}/events").status_code == 404
    listed = w.lead.get("/api/v1/workloads", params={"owner_id": w.victim_id}).json()
    assert listed["count"] == 0
    assert "s3cret" not in w.lead.get("/api/v1/queue").text
    assert _audit_actions(w.admin)[:2] == ["team.update", "team.invite"]


def test_the_invited_user_accepts_and_joins(world: World) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    assert invitation["team_id"] == w.team_id
    assert invitation["team_name"] == "vision"
    assert invitation["invited_by_email"] == "lead@example.com"
    assert invitation["is_team_admin"] is False

    accepted = w.victim.post(f"/api/v1/team-invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "team_id": w.team_id,
        "team_name": "vision",
        "is_team_admin": False,
        "max_priority": None,
    }
    assert _team_ids(w.victim) == [w.team_id]
    assert _my_invitations(w.victim) == []
    team = w.lead.get(f"/api/v1/teams/{w.team_id}").json()
    assert "victim@example.com" in [m["email"] for m in team["members"]]
    assert team["pending_invitations"] == []
    again = w.victim.post(f"/api/v1/team-invitations/{invitation['id']}/accept")
    assert again.status_code == 404

    work = _submit(w.victim)
    assert work["team_id"] == w.team_id  # from now on, with consent
    assert w.lead.get(f"/api/v1/workloads/{work['id']}").status_code == 200
    assert _audit_actions(w.admin)[0] == "team.invite_accepted"


def test_an_invitation_as_team_admin_makes_a_team_admin(world: World) -> None:
    w = world
    _invite_victim(w, is_team_admin=True)
    [invitation] = _my_invitations(w.victim)
    accepted = w.victim.post(f"/api/v1/team-invitations/{invitation['id']}/accept")
    assert accepted.json()["is_team_admin"] is True
    renamed = w.victim.patch(f"/api/v1/teams/{w.team_id}", json={"name": "vision-2"})
    assert renamed.status_code == 200, renamed.text


def test_declining_deletes_the_invitation(world: World) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    declined = w.victim.post(f"/api/v1/team-invitations/{invitation['id']}/decline")
    assert declined.status_code == 204, declined.text
    assert _my_invitations(w.victim) == []
    assert w.lead.get(f"/api/v1/teams/{w.team_id}").json()["pending_invitations"] == []
    late = w.victim.post(f"/api/v1/team-invitations/{invitation['id']}/accept")
    assert late.status_code == 404
    assert _team_ids(w.victim) == []
    assert _audit_actions(w.admin)[0] == "team.invite_declined"


@pytest.mark.parametrize("who", ["lead", "member", "outsider", "operator", "admin"])
@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_nobody_else_answers_an_invitation(world: World, who: str, answer: str) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    intruder: TestClient = getattr(w, who)
    assert _my_invitations(intruder) == []  # nor sees it among theirs
    response = intruder.post(f"/api/v1/team-invitations/{invitation['id']}/{answer}")
    assert response.status_code == 404, response.text
    # The very answer for an invitation that does not exist: nothing is revealed.
    assert response.json()["detail"] == f"team invitation {invitation['id']!r} not found"
    assert _my_invitations(w.victim) == [invitation]  # untouched
    assert w.victim_id not in {
        m["user_id"] for m in w.admin.get(f"/api/v1/teams/{w.team_id}").json()["members"]
    }


@pytest.mark.parametrize(
    ("who", "status"),
    [("lead", 204), ("admin", 204), ("member", 403), ("outsider", 404), ("victim", 404)],
    ids=["team admin", "admin", "member: may read, not manage", "outsider", "the invitee"],
)
def test_who_cancels_an_invitation(world: World, who: str, status: int) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    canceller: TestClient = getattr(w, who)
    path = f"/api/v1/teams/{w.team_id}/invitations/{invitation['id']}"
    assert canceller.delete(path).status_code == status
    assert len(_my_invitations(w.victim)) == (0 if status == 204 else 1)
    if status == 204:
        assert _audit_actions(w.admin)[0] == "team.invite_cancelled"


def test_an_invitation_of_another_team_is_not_found_there(world: World) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    other = w.admin.post(
        "/api/v1/teams",
        json={"name": "audio", "members": [{"user_id": w.lead_id, "is_team_admin": True}]},
    ).json()
    wrong_team = f"/api/v1/teams/{other['id']}/invitations/{invitation['id']}"
    assert w.lead.delete(wrong_team).status_code == 404
    assert w.lead.delete(f"/api/v1/teams/{w.team_id}/invitations/nope").status_code == 404
    assert len(_my_invitations(w.victim)) == 1


def test_an_expired_invitation_cannot_be_accepted(world: World, ctx: ServiceContext) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(WEEK_S + 1)
    assert _my_invitations(w.victim) == []
    assert w.lead.get(f"/api/v1/teams/{w.team_id}").json()["pending_invitations"] == []
    late = w.victim.post(f"/api/v1/team-invitations/{invitation['id']}/accept")
    assert late.status_code == 409, late.text
    assert "expired" in late.json()["detail"]
    assert _team_ids(w.victim) == []

    _invite_victim(w)  # listing the user again renews it
    [renewed] = _my_invitations(w.victim)
    assert renewed["id"] == invitation["id"]
    accepted = w.victim.post(f"/api/v1/team-invitations/{renewed['id']}/accept")
    assert accepted.status_code == 200, accepted.text


def test_listing_again_renews_one_invitation(world: World, ctx: ServiceContext) -> None:
    w = world
    first = _invite_victim(w)["pending_invitations"][0]
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(3600)
    second = _invite_victim(w, is_team_admin=True)["pending_invitations"]
    assert len(second) == 1
    assert second[0]["id"] == first["id"]
    assert second[0]["expires_at"] > first["expires_at"]
    assert second[0]["is_team_admin"] is True


def test_team_admins_still_remove_members_and_change_their_flags(world: World) -> None:
    w = world
    response = w.lead.patch(
        f"/api/v1/teams/{w.team_id}",
        json={"members": [{"user_id": w.lead_id, "is_team_admin": True}]},
    )
    assert response.status_code == 200, response.text
    assert [m["email"] for m in response.json()["members"]] == ["lead@example.com"]
    assert _team_ids(w.member) == []
    # Re-adding a removed member is joining again: an invitation, not a membership.
    back = w.lead.patch(
        f"/api/v1/teams/{w.team_id}",
        json={"members": _members(w)},
    ).json()
    assert [m["email"] for m in back["members"]] == ["lead@example.com"]
    assert [i["email"] for i in back["pending_invitations"]] == ["member@example.com"]

    promoted = w.admin.patch(
        f"/api/v1/teams/{w.team_id}",
        json={"members": [{"user_id": w.lead_id, "is_team_admin": True}, {"user_id": w.member_id}]},
    ).json()
    flag = w.lead.patch(
        f"/api/v1/teams/{w.team_id}",
        json={
            "members": [
                {"user_id": w.lead_id, "is_team_admin": True},
                {"user_id": w.member_id, "is_team_admin": True},
            ]
        },
    ).json()
    assert promoted["pending_invitations"] == []  # the admin's add replaced the invitation
    assert {m["email"]: m["is_team_admin"] for m in flag["members"]} == {
        "lead@example.com": True,
        "member@example.com": True,
    }


def test_an_admin_adds_members_directly(world: World) -> None:
    w = world
    _invite_victim(w)
    response = w.admin.patch(
        f"/api/v1/teams/{w.team_id}", json={"members": _members(w, {"user_id": w.victim_id})}
    )
    assert response.status_code == 200, response.text
    assert "victim@example.com" in [m["email"] for m in response.json()["members"]]
    assert response.json()["pending_invitations"] == []
    assert _my_invitations(w.victim) == []
    assert _team_ids(w.victim) == [w.team_id]


@pytest.mark.parametrize(
    ("who", "sees_pending"),
    [("lead", True), ("admin", True), ("member", False), ("operator", False)],
)
def test_pending_invitations_are_shown_to_who_manages_the_team(
    world: World, who: str, sees_pending: bool
) -> None:
    w = world
    _invite_victim(w)
    reader: TestClient = getattr(w, who)
    one = reader.get(f"/api/v1/teams/{w.team_id}").json()
    [listed] = [t for t in reader.get("/api/v1/teams").json()["data"] if t["id"] == w.team_id]
    for team in (one, listed):
        assert bool(team["pending_invitations"]) is sees_pending, who


@pytest.mark.parametrize(
    ("members", "field"),
    [
        ([{"user_id": "0" * 32}], "members.0.user_id"),
        ([{"user_id": "VICTIM"}, {"user_id": "VICTIM"}], "members"),
    ],
    ids=["unknown user", "listed twice"],
)
def test_a_refused_member_list_writes_nothing(
    world: World, members: list[dict[str, Any]], field: str
) -> None:
    w = world
    body = [
        {**m, "user_id": w.victim_id if m["user_id"] == "VICTIM" else m["user_id"]} for m in members
    ]
    before = w.admin.get("/api/v1/audit", params={"limit": 1}).json()["count"]
    response = w.lead.patch(f"/api/v1/teams/{w.team_id}", json={"members": body})
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _my_invitations(w.victim) == []
    assert w.admin.get("/api/v1/audit", params={"limit": 1}).json()["count"] == before


def test_bad_invitation_ids_are_not_found(world: World) -> None:
    for bad in ("nope", "0" * 32, "%27%20OR%201=1"):
        for answer in ("accept", "decline"):
            response = world.victim.post(f"/api/v1/team-invitations/{bad}/{answer}")
            assert response.status_code in (404, 422), response.text


def test_concurrent_accepts_make_one_membership(world: World, ctx: ServiceContext) -> None:
    w = world
    _invite_victim(w)
    [invitation] = _my_invitations(w.victim)
    victim = Caller(w.victim_id, "victim@example.com", Role.USER)
    start = threading.Barrier(4)

    def accept() -> str:
        start.wait()
        try:
            team_invitations.accept_invitation(ctx, victim, invitation["id"])
        except NotFound:
            return "not found"
        return "joined"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(lambda _: accept(), range(4)))
    assert outcomes == ["joined", "not found", "not found", "not found"]
    assert _team_ids(w.victim) == [w.team_id]


def test_deleting_the_invited_user_or_the_inviter_keeps_things_consistent(world: World) -> None:
    w = world
    _invite_victim(w)
    assert w.admin.delete(f"/api/v1/users/{w.lead_id}").status_code == 204
    [invitation] = _my_invitations(w.victim)
    assert invitation["invited_by_email"] is None
    assert w.admin.delete(f"/api/v1/users/{w.victim_id}").status_code == 204
    assert w.admin.get(f"/api/v1/teams/{w.team_id}").json()["pending_invitations"] == []
