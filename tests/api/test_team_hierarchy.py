"""The quota tree over the team admin API: parent, guarantee and weight (issue 21).

Admins only; hostile values (cycles, a third level, negative, huge, non-finite, unknown
parents) are refused with a 422 naming the field, and nothing is written on refusal."""

from __future__ import annotations

from typing import Any

from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient

from gpuyard.services.context import ServiceContext


def _team(client: TestClient, name: str, **hierarchy: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if hierarchy:
        body["hierarchy"] = hierarchy
    response = client.post("/api/v1/teams", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_admin_builds_a_two_level_tree(client: TestClient) -> None:
    dept = _team(client, "research", guarantee={"gpu": 8}, weight=2)
    assert dept["hierarchy"] == {
        "parent_id": None,
        "guarantee": {"cpu": 0, "ram_gb": 0, "storage_gb": 0, "gpu": 8, "gpu_models": {}},
        "weight": 2,
        "gpu_model_limits": {},
        "weights": {},
        "gpu_model_weights": {},
    }
    team = _team(
        client,
        "vision",
        parent_id=dept["id"],
        guarantee={"cpu": 16, "ram_gb": 64.5, "gpu": 2.5},
        weight=3,
    )
    assert team["hierarchy"]["parent_id"] == dept["id"]
    assert team["hierarchy"]["guarantee"] == {
        "cpu": 16,
        "ram_gb": 64.5,
        "storage_gb": 0,
        "gpu": 2.5,
        "gpu_models": {},
    }
    moved = client.patch(
        f"/api/v1/teams/{team['id']}", json={"hierarchy": {"parent_id": None, "weight": 1}}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["hierarchy"]["parent_id"] is None
    assert moved.json()["hierarchy"]["guarantee"]["gpu"] == 0  # hierarchy replaces all three
    audit = client.get("/api/v1/audit", params={"action": "team.update"}).json()["data"]
    assert audit[0]["details"]["hierarchy"]["parent_id"] is None


def test_cycles_and_a_third_level_are_refused_and_nothing_is_written(client: TestClient) -> None:
    dept = _team(client, "dept")
    team = _team(client, "team", parent_id=dept["id"])
    # A department under its own team: a cycle.
    cycle = client.patch(
        f"/api/v1/teams/{dept['id']}", json={"hierarchy": {"parent_id": team["id"]}}
    )
    assert _fields(cycle) == ["hierarchy.parent_id"]
    assert "own ancestor" in cycle.json()["errors"][0]["message"]
    # Itself as parent.
    own = client.patch(f"/api/v1/teams/{dept['id']}", json={"hierarchy": {"parent_id": dept["id"]}})
    assert _fields(own) == ["hierarchy.parent_id"]
    # A team below a team that already has a parent: three levels.
    deep = client.post(
        "/api/v1/teams", json={"name": "deep", "hierarchy": {"parent_id": team["id"]}}
    )
    assert _fields(deep) == ["hierarchy.parent_id"]
    assert "3 levels deep" in deep.json()["errors"][0]["message"]
    # Giving the department a parent would push its team to a third level.
    other = _team(client, "other")
    lifted = client.patch(
        f"/api/v1/teams/{dept['id']}", json={"hierarchy": {"parent_id": other["id"]}}
    )
    assert _fields(lifted) == ["hierarchy.parent_id"]
    unknown = client.post(
        "/api/v1/teams", json={"name": "lost", "hierarchy": {"parent_id": "nosuchteam"}}
    )
    assert _fields(unknown) == ["hierarchy.parent_id"]
    names = {t["name"] for t in client.get("/api/v1/teams").json()["data"]}
    assert names == {"dept", "team", "other"}
    assert client.get(f"/api/v1/teams/{dept['id']}").json()["hierarchy"]["parent_id"] is None


def test_hostile_numbers_are_refused(client: TestClient) -> None:
    for hierarchy, field in (
        ({"guarantee": {"gpu": -1}}, "hierarchy.guarantee.gpu"),
        ({"guarantee": {"cpu": 1e300}}, "hierarchy.guarantee.cpu"),
        ({"guarantee": {"ram_gb": "lots"}}, "hierarchy.guarantee.ram_gb"),
        ({"weight": 0}, "hierarchy.weight"),
        ({"weight": 10**12}, "hierarchy.weight"),
        ({"weight": 1.5}, "hierarchy.weight"),
    ):
        response = client.post("/api/v1/teams", json={"name": "x", "hierarchy": hierarchy})
        assert _fields(response) == [field], hierarchy
    assert client.get("/api/v1/teams").json()["count"] == 0


def test_only_admins_place_teams(client: TestClient, ctx: ServiceContext) -> None:
    lead_id = add_user(ctx, "lead@example.com", "some-pass-123")
    lead = authed_client(ctx, mint_token(ctx, lead_id))
    team = client.post(
        "/api/v1/teams",
        json={"name": "ml", "members": [{"user_id": lead_id, "is_team_admin": True}]},
    ).json()
    refused = lead.patch(f"/api/v1/teams/{team['id']}", json={"hierarchy": {"weight": 5}})
    assert refused.status_code == 403
    assert client.get(f"/api/v1/teams/{team['id']}").json()["hierarchy"]["weight"] == 1


def test_per_model_guarantees_are_stored_and_shown(client: TestClient) -> None:
    team = _team(client, "vision", guarantee={"gpu": 12, "gpu_models": {"H100": 8, "a100": 2.5}})
    assert team["hierarchy"]["guarantee"]["gpu_models"] == {"H100": 8, "a100": 2.5}
    shown = client.get(f"/api/v1/teams/{team['id']}").json()
    assert shown["hierarchy"]["guarantee"]["gpu_models"] == {"H100": 8, "a100": 2.5}
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    assert rows["vision"]["gpu_models"] == [
        {
            "model": "H100",
            "guarantee": 8,
            "limit": None,
            "used": 0,
            "weight": None,
            "fair_share": None,
        },
        {
            "model": "a100",
            "guarantee": 2.5,
            "limit": None,
            "used": 0,
            "weight": None,
            "fair_share": None,
        },
    ]
    audit = client.get("/api/v1/audit", params={"action": "team.create"}).json()["data"]
    assert audit[0]["details"]["hierarchy"]["guarantee"]["gpu_models"] == {"H100": 8, "a100": 2.5}


def test_hostile_per_model_guarantees_are_refused_and_nothing_is_written(
    client: TestClient,
) -> None:
    team = _team(client, "vision", guarantee={"gpu": 8, "gpu_models": {"H100": 4}})
    field = "hierarchy.guarantee.gpu_models"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"gpu": 8, "gpu_models": {"H100": 9}}, field),  # more than the GPU guarantee
        ({"gpu": 8, "gpu_models": {"H100|A100": 2}}, f"{field}.H100|A100"),  # not one model
        ({"gpu": 8, "gpu_models": {"H100": 2, "h100": 2}}, f"{field}.h100"),  # the same model
        ({"gpu": 8, "gpu_models": {"--": 2}}, f"{field}.--"),  # no letter or digit
        ({"gpu": 8, "gpu_models": {"H100": 0}}, f"{field}.H100"),
        ({"gpu": 8, "gpu_models": {"H100": 0.0004}}, f"{field}.H100"),
        ({"gpu": 8, "gpu_models": {"H100": -1}}, f"{field}.H100"),
        ({"gpu": 8, "gpu_models": {"H100": 2_000_000}}, f"{field}.H100"),
        ({"gpu": 8, "gpu_models": {"x" * 65: 1}}, f"{field}.{'x' * 64}"),
        ({"gpu": 64, "gpu_models": {f"m{i}": 1 for i in range(17)}}, field),
        ({"gpu": 8, "gpu_models": {"   ": 1}}, f"{field}."),
    ]
    for guarantee, expected in cases:
        response = client.patch(
            f"/api/v1/teams/{team['id']}", json={"hierarchy": {"guarantee": guarantee}}
        )
        assert _fields(response) == [expected], guarantee
    # Wrong types are the schema's 422 (strict: no coercion), never a 500.
    for bad in ({"H100": "8"}, ["H100"], {"H100": None}, {"H100": True}):
        response = client.patch(
            f"/api/v1/teams/{team['id']}",
            json={"hierarchy": {"guarantee": {"gpu": 8, "gpu_models": bad}}},
        )
        assert response.status_code == 422, (bad, response.text)
    after = client.get(f"/api/v1/teams/{team['id']}").json()["hierarchy"]["guarantee"]
    assert after["gpu_models"] == {"H100": 4}
    assert after["gpu"] == 8


def test_per_model_limits_are_stored_and_shown(client: TestClient) -> None:
    dept = _team(client, "research", gpu_model_limits={"H100": 6, "L4": 0})
    team = _team(
        client,
        "vision",
        parent_id=dept["id"],
        guarantee={"gpu": 4, "gpu_models": {"H100": 2}},
        gpu_model_limits={"h100": 4, "A100": 1.5},
    )
    assert team["hierarchy"]["gpu_model_limits"] == {"h100": 4, "A100": 1.5}
    shown = client.get(f"/api/v1/teams/{team['id']}").json()
    assert shown["hierarchy"]["gpu_model_limits"] == {"h100": 4, "A100": 1.5}
    assert dept["hierarchy"]["gpu_model_limits"] == {"H100": 6, "L4": 0}  # 0: none of it
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    # One entry per model: the guarantee's spelling first, a limit alone gets guarantee 0.
    assert rows["vision"]["gpu_models"] == [
        {
            "model": "H100",
            "guarantee": 2,
            "limit": 4,
            "used": 0,
            "weight": None,
            "fair_share": None,
        },
        {
            "model": "A100",
            "guarantee": 0,
            "limit": 1.5,
            "used": 0,
            "weight": None,
            "fair_share": None,
        },
    ]
    assert rows["research"]["gpu_models"] == [
        {
            "model": "H100",
            "guarantee": 0,
            "limit": 6,
            "used": 0,
            "weight": None,
            "fair_share": None,
        },
        {"model": "L4", "guarantee": 0, "limit": 0, "used": 0, "weight": None, "fair_share": None},
    ]
    audit = client.get("/api/v1/audit", params={"action": "team.create"}).json()["data"]
    assert audit[0]["details"]["hierarchy"]["gpu_model_limits"] == {"h100": 4, "A100": 1.5}
    # The hierarchy is replaced as a whole: without the field, no limits remain.
    cleared = client.patch(f"/api/v1/teams/{team['id']}", json={"hierarchy": {"weight": 2}})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["hierarchy"]["gpu_model_limits"] == {}


def test_hostile_per_model_limits_are_refused_and_nothing_is_written(
    client: TestClient,
) -> None:
    guarantee = {"gpu": 8, "gpu_models": {"H100": 4}}
    team = _team(client, "vision", guarantee=guarantee, gpu_model_limits={"H100": 6})
    field = "hierarchy.gpu_model_limits"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"H100": 3}, f"{field}.H100"),  # below the guarantee of the same model
        ({"h100": 3.5}, f"{field}.h100"),  # the same model, written otherwise
        ({"H100|A100": 2}, f"{field}.H100|A100"),  # not one model
        ({"A100": 2, "a100": 2}, f"{field}.a100"),  # the same model twice
        ({"--": 2}, f"{field}.--"),  # no letter or digit
        ({"A100": 0.0004}, f"{field}.A100"),  # rounds to no milli-GPU: not 0, not 0.001
        ({"A100": -1}, f"{field}.A100"),
        ({"A100": 2_000_000}, f"{field}.A100"),
        ({"x" * 65: 1}, f"{field}.{'x' * 64}"),
        ({f"m{i}": 1 for i in range(17)}, field),
        ({"   ": 1}, f"{field}."),
    ]
    for limits, expected in cases:
        response = client.patch(
            f"/api/v1/teams/{team['id']}",
            json={"hierarchy": {"guarantee": guarantee, "gpu_model_limits": limits}},
        )
        assert _fields(response) == [expected], limits
    for bad in ({"H100": "8"}, ["H100"], {"H100": None}, {"H100": True}, "H100=4"):
        response = client.patch(
            f"/api/v1/teams/{team['id']}",
            json={"hierarchy": {"guarantee": guarantee, "gpu_model_limits": bad}},
        )
        assert response.status_code == 422, (bad, response.text)
    # Nothing was written: neither the limits nor the rest of the hierarchy sent with them.
    after = client.get(f"/api/v1/teams/{team['id']}").json()["hierarchy"]
    assert after["gpu_model_limits"] == {"H100": 6}
    assert after["guarantee"]["gpu_models"] == {"H100": 4}
    refused = client.post(
        "/api/v1/teams", json={"name": "nope", "hierarchy": {"gpu_model_limits": {"H100": -1}}}
    )
    assert _fields(refused) == [f"{field}.H100"]
    names = [t["name"] for t in client.get("/api/v1/teams").json()["data"]]
    assert "nope" not in names


def test_per_resource_and_per_model_weights_are_stored_and_shown(client: TestClient) -> None:
    team = _team(
        client,
        "vision",
        weight=2,
        weights={"gpu": 5, "ram_gb": 1},
        gpu_model_weights={"H100": 4, "a100": 1},
    )
    assert team["hierarchy"]["weights"] == {"gpu": 5, "ram_gb": 1}
    assert team["hierarchy"]["gpu_model_weights"] == {"H100": 4, "a100": 1}
    shown = client.get(f"/api/v1/teams/{team['id']}").json()["hierarchy"]
    assert shown["weights"] == {"gpu": 5, "ram_gb": 1}
    assert shown["gpu_model_weights"] == {"H100": 4, "a100": 1}
    rows = {r["name"]: r for r in client.get("/api/v1/fairshare").json()["data"]}
    # Resources not set apart keep the team's one weight.
    assert rows["vision"]["weight"] == 2
    assert rows["vision"]["weights"] == {"cpu": 2, "ram_gb": 1, "storage_gb": 2, "gpu": 5}
    models = {m["model"]: m for m in rows["vision"]["gpu_models"]}
    assert models["H100"]["weight"] == 4
    assert models["a100"]["weight"] == 1
    # Nothing pinned waits and nothing runs: no demand for either model, no share of it.
    assert models["H100"]["fair_share"] == 0
    audit = client.get("/api/v1/audit", params={"action": "team.create"}).json()["data"]
    assert audit[0]["details"]["hierarchy"]["weights"] == {"gpu": 5, "ram_gb": 1}
    assert audit[0]["details"]["hierarchy"]["gpu_model_weights"] == {"H100": 4, "a100": 1}
    cleared = client.patch(f"/api/v1/teams/{team['id']}", json={"hierarchy": {"weight": 3}})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["hierarchy"]["weights"] == {}
    assert cleared.json()["hierarchy"]["gpu_model_weights"] == {}


def test_hostile_weights_are_refused_and_nothing_is_written(client: TestClient) -> None:
    team = _team(client, "vision", weights={"cpu": 3}, gpu_model_weights={"H100": 2})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"weights": {"gpus": 2}}, "hierarchy.weights.gpus"),  # not a resource
        ({"weights": {"cpu": 0}}, "hierarchy.weights.cpu"),
        ({"weights": {"cpu": 10_000}}, "hierarchy.weights.cpu"),
        ({"weights": {"x" * 80: 1}}, f"hierarchy.weights.{'x' * 64}"),
        ({"gpu_model_weights": {"H100": 0}}, "hierarchy.gpu_model_weights.H100"),
        ({"gpu_model_weights": {"H100": 10_000}}, "hierarchy.gpu_model_weights.H100"),
        ({"gpu_model_weights": {"H100|A100": 2}}, "hierarchy.gpu_model_weights.H100|A100"),
        ({"gpu_model_weights": {"A100": 2, "a100": 3}}, "hierarchy.gpu_model_weights.a100"),
        ({"gpu_model_weights": {"--": 2}}, "hierarchy.gpu_model_weights.--"),
        ({"gpu_model_weights": {f"m{i}": 1 for i in range(17)}}, "hierarchy.gpu_model_weights"),
    ]
    for hierarchy, expected in cases:
        response = client.patch(f"/api/v1/teams/{team['id']}", json={"hierarchy": hierarchy})
        assert _fields(response) == [expected], hierarchy
    for bad in (
        {"weights": {"cpu": 2.5}},
        {"weights": {"cpu": "2"}},
        {"weights": {"cpu": True}},
        {"weights": ["cpu"]},
        {"gpu_model_weights": {"H100": None}},
        {"gpu_model_weights": {"H100": 1.5}},
        {"gpu_model_weights": "H100=2"},
    ):
        response = client.patch(f"/api/v1/teams/{team['id']}", json={"hierarchy": bad})
        assert response.status_code == 422, (bad, response.text)
    after = client.get(f"/api/v1/teams/{team['id']}").json()["hierarchy"]
    assert after["weights"] == {"cpu": 3}
    assert after["gpu_model_weights"] == {"H100": 2}
    refused = client.post(
        "/api/v1/teams", json={"name": "nope", "hierarchy": {"weights": {"gpu": -1}}}
    )
    assert _fields(refused) == ["hierarchy.weights.gpu"]
    assert "nope" not in [t["name"] for t in client.get("/api/v1/teams").json()["data"]]
