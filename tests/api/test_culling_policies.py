"""Idle culling's policies over the API (issue 19): admins and operators read them all;
a team's members read its policy and its team admins set it, but only admins set or lift
``never``; image types are the admins'; a workload shows its culling status to whoever
may read it. Bad values are 422s naming the field, with nothing written."""

from __future__ import annotations

from factories.app import add_user, authed_client, mint_token, settle
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _as(ctx: ServiceContext, email: str, role: str = "user") -> tuple[TestClient, str]:
    user_id = add_user(ctx, email, "some-pass-123", role)
    return authed_client(ctx, mint_token(ctx, user_id)), user_id


def _team(client: TestClient, lead_id: str, member_id: str) -> str:
    response = client.post(
        "/api/v1/teams",
        json={
            "name": "ml",
            "members": [
                {"user_id": lead_id, "is_team_admin": True},
                {"user_id": member_id, "is_team_admin": False},
            ],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_team_admins_set_their_policy_but_never_is_the_admins(
    client: TestClient, ctx: ServiceContext
) -> None:
    lead, lead_id = _as(ctx, "lead@example.com")
    member, member_id = _as(ctx, "member@example.com")
    outsider, _ = _as(ctx, "out@example.com")
    team_id = _team(client, lead_id, member_id)
    path = f"/api/v1/teams/{team_id}/culling"

    unset = member.get(path)
    assert unset.status_code == 200, unset.text
    assert unset.json()["policy"] is None
    assert unset.json()["effective"]["idle_culling"] is False  # the default is off
    assert outsider.get(path).status_code == 404  # outsiders learn nothing

    body = {"mode": "on", "threshold_pct": 10, "window_s": 3600, "max_lifetime_s": 86400}
    assert member.put(path, json=body).status_code == 403
    set_by_lead = lead.put(path, json=body)
    assert set_by_lead.status_code == 200, set_by_lead.text
    assert set_by_lead.json()["policy"]["threshold_pct"] == 10
    assert set_by_lead.json()["effective"] == {
        "idle_culling": True,
        "off_by": None,
        "threshold_pct": 10.0,
        "window_s": 3600,
    }

    refused = lead.put(path, json={"mode": "never"})
    assert refused.status_code == 403, refused.text
    assert "never" in refused.json()["detail"]
    assert lead.get(path).json()["policy"]["mode"] == "on"  # nothing written

    assert client.put(path, json={"mode": "never"}).status_code == 200
    assert lead.put(path, json={"mode": "on"}).status_code == 403  # cannot lift it
    assert lead.delete(path).status_code == 403
    assert client.get(path).json()["effective"]["off_by"] == "team (never)"
    assert client.delete(path).status_code == 204
    assert client.delete(path).status_code == 404

    actions = [
        e["action"]
        for e in client.get("/api/v1/audit", params={"action": "culling."}).json()["data"]
    ]
    assert actions == ["culling.policy.clear", "culling.policy.set", "culling.policy.set"]


def test_image_type_policies_are_the_admins_and_values_are_bounded(
    client: TestClient, ctx: ServiceContext
) -> None:
    operator, _ = _as(ctx, "op@example.com", "operator")
    user, _ = _as(ctx, "user@example.com")
    path = "/api/v1/culling/policies/image-types/jupyter"
    assert operator.put(path, json={"mode": "on"}).status_code == 403
    assert user.get("/api/v1/culling/policies").status_code == 403

    for body, field in (
        ({"threshold_pct": 150}, "threshold_pct"),
        ({"threshold_pct": -1}, "threshold_pct"),
        ({"window_s": 10}, "window_s"),
        ({"mode": "sometimes"}, "mode"),
        ({"max_lifetime_s": 3600}, "max_lifetime_s"),  # a team's field, not an image type's
    ):
        refused = client.put(path, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == [field], refused.json()
    assert (
        client.put("/api/v1/culling/policies/image-types/Not%20A%20Type", json={}).status_code
        == 422
    )

    assert client.put(path, json={"mode": "on", "window_s": 600}).status_code == 200
    listed = operator.get("/api/v1/culling/policies").json()
    assert listed["default"]["mode"] == "off"
    assert [(p["scope"], p["subject"], p["window_s"]) for p in listed["image_types"]] == [
        ("image_type", "jupyter", 600)
    ]


def test_a_workload_shows_the_policy_of_its_image_type(
    client: TestClient, ctx: ServiceContext
) -> None:
    image = client.post(
        "/api/v1/images",
        json={"name": "notebook", "reference": "jupyter/base:1", "type": "jupyter", "cpu": 1},
    )
    assert image.status_code == 201, image.text
    assert (
        client.put(
            "/api/v1/culling/policies/image-types/jupyter",
            json={"mode": "on", "threshold_pct": 3, "window_s": 1800},
        ).status_code
        == 200
    )
    launched = client.post("/api/v1/workloads", json={"image_id": image.json()["id"]})
    assert launched.status_code == 201, launched.text
    settle(ctx)
    culling = client.get(f"/api/v1/workloads/{launched.json()['id']}/culling").json()
    assert culling["image_type"] == "jupyter"
    assert (culling["idle_culling"], culling["threshold_pct"], culling["window_s"]) == (
        True,
        3.0,
        1800,
    )
    assert culling["seconds_left"] is None  # nothing announced yet
    other = client.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1}).json()
    assert client.get(f"/api/v1/workloads/{other['id']}/culling").json()["idle_culling"] is False
    stranger, _ = _as(ctx, "stranger@example.com")
    assert stranger.get(f"/api/v1/workloads/{other['id']}/culling").status_code == 404


def test_max_lifetime_at_submit_is_bounded(client: TestClient) -> None:
    for value in (10, 10**9, 1.5, "1h"):
        refused = client.post(
            "/api/v1/workloads", json={"image": "busybox", "cpu": 1, "max_lifetime_s": value}
        )
        assert refused.status_code == 422, (value, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == ["max_lifetime_s"]
    accepted = client.post(
        "/api/v1/workloads", json={"image": "busybox", "cpu": 1, "max_lifetime_s": 3600}
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["max_lifetime_s"] == 3600
