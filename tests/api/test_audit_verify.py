"""GET /audit/verify: the chain walk of `gpuyard audit verify`, over the API (admins)."""

from __future__ import annotations

from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpuyard.services.context import ServiceContext


def test_an_intact_chain_then_an_edited_event_is_named(
    client: TestClient, ctx: ServiceContext
) -> None:
    for name in ("a", "b", "c"):
        assert client.post("/api/v1/teams", json={"name": name}).status_code == 201
    report = client.get("/api/v1/audit/verify").json()
    events = client.get("/api/v1/audit", params={"limit": 1}).json()
    assert report == {
        "intact": True,
        "checked": events["count"],
        "first_bad_id": None,
        "problem": None,
        "head_hash": events["data"][0]["hash"],
    }
    target = events["count"] - 1
    with ctx.db.engine.begin() as conn:  # someone with write access to the database
        conn.execute(
            text("UPDATE audit_events SET action = 'team.delete' WHERE id = :id"), {"id": target}
        )
    broken = client.get("/api/v1/audit/verify").json()
    assert broken["intact"] is False
    assert broken["first_bad_id"] == target
    assert broken["checked"] == target - 1
    assert "edited" in broken["problem"]
    assert broken["head_hash"] is None


def test_only_admins_verify(ctx: ServiceContext) -> None:
    operator = add_user(ctx, "op@example.com", "operator-pass-1", role="operator")
    response = authed_client(ctx, mint_token(ctx, operator)).get("/api/v1/audit/verify")
    assert response.status_code == 403
