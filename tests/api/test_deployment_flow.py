"""The deployment-manager flow end to end over HTTP (../shared/seeds/deployment-manager.md):
admin logs in and invites a developer; the developer registers with the code, logs in,
creates workloads and lists only their own; a second user can neither see nor delete
them; the team quota keeps extra work pending with a reason. The audit log holds every
step, `gpuyard audit verify` passes, and editing one row makes it fail at that row."""

from __future__ import annotations

from typing import Any

from factories.app import authed_client, login, settle
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli.audit_commands import audit_app
from gpuyard.services.context import ServiceContext
from gpuyard.store.audit_tables import AuditEventRow


def _invite_and_register(
    admin: TestClient, anon: TestClient, email: str, password: str, **invite: Any
) -> str:
    """Invite ``email``, register with the code, log in; returns the session token."""
    response = admin.post("/api/v1/invites", json={"email": email, "role": "user", **invite})
    assert response.status_code == 201, response.text
    code = response.json()["code"]
    registered = anon.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "invite_code": code},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["role"] == "user"
    return login(anon, email, password)


def _verify_args(ctx: ServiceContext) -> list[str]:
    if ctx.settings.database_url:
        return ["verify", "--database-url", ctx.settings.database_url]
    return ["verify", "--data-dir", str(ctx.settings.data_dir)]


def test_deployment_manager_flow(ctx: ServiceContext) -> None:
    anon = TestClient(create_app(ctx))
    admin = authed_client(ctx, login(anon))
    cluster_id = admin.get("/api/v1/clusters").json()["data"][0]["id"]
    team = admin.post("/api/v1/teams", json={"name": "dev-team", "quota": {"gpu": 2}}).json()

    dev = authed_client(
        ctx,
        _invite_and_register(admin, anon, "dev@example.com", "dev-pass-123", team_id=team["id"]),
    )
    me = dev.get("/api/v1/auth/me").json()
    assert me["role"] == "user"
    assert [t["team_name"] for t in me["teams"]] == ["dev-team"]

    deployment = {"cluster_id": cluster_id, "ram_gb": 4, "cpu": 2, "priority": 3}
    first = dev.post(
        "/api/v1/workloads",
        json={"name": "test-deployment", "image": "busybox", "gpu": 2, **deployment},
    )
    assert first.status_code == 201, first.text
    assert first.json()["team_id"] == team["id"]  # the developer's only team
    extra = dev.post(
        "/api/v1/workloads", json={"name": "one-more", "image": "busybox", "gpu": 1, **deployment}
    ).json()
    admins_own = admin.post("/api/v1/workloads", json={"image": "busybox", "cpu": 1}).json()

    settle(ctx)
    running = dev.get(f"/api/v1/workloads/{first.json()['id']}").json()
    assert running["status"] == "running", running["reason"]
    waiting = dev.get(f"/api/v1/workloads/{extra['id']}").json()
    assert waiting["status"] == "pending"
    assert "team quota exceeded" in waiting["reason"]
    listed = dev.get("/api/v1/workloads").json()
    assert {w["id"] for w in listed["data"]} == {first.json()["id"], extra["id"]}
    assert admins_own["id"] not in {w["id"] for w in listed["data"]}

    other = authed_client(
        ctx, _invite_and_register(admin, anon, "other@example.com", "other-pass-1")
    )
    target = f"/api/v1/workloads/{first.json()['id']}"
    assert other.get("/api/v1/workloads").json() == {"data": [], "count": 0}
    assert other.get(target).status_code == 404
    assert other.delete(target).status_code == 404
    assert other.post(f"{target}/stop").status_code == 404
    assert other.patch(target, json={"priority": 5}).status_code == 404
    assert dev.get(target).json()["status"] == "running"

    # The audit log holds every step, in order.
    events = admin.get("/api/v1/audit", params={"limit": 1000}).json()["data"][::-1]
    steps = [(e["action"], e["actor_email"]) for e in events]
    expected = [
        ("auth.login", "admin@example.com"),
        ("team.create", "admin@example.com"),
        ("invite.create", "admin@example.com"),
        ("auth.register", "dev@example.com"),
        ("auth.login", "dev@example.com"),
        ("workload.create", "dev@example.com"),
        ("workload.create", "dev@example.com"),
        ("workload.create", "admin@example.com"),
        ("invite.create", "admin@example.com"),
        ("auth.register", "other@example.com"),
        ("auth.login", "other@example.com"),
    ]
    assert steps[-len(expected) :] == expected
    created = next(e for e in events if e["target_id"] == first.json()["id"])
    assert created["details"]["gpu"] == 2
    assert created["ip"] == "testclient"
    assert all("code" not in e["details"] and "password" not in e["details"] for e in events)

    runner = CliRunner()
    intact = runner.invoke(audit_app, _verify_args(ctx))
    assert intact.exit_code == 0, intact.output
    assert f"{len(events)} events verified" in intact.output

    with ctx.db.write() as session:  # someone rewrites history in the database
        session.execute(
            update(AuditEventRow)
            .where(AuditEventRow.id == created["id"])
            .values(actor_email="someone-else@example.com")
        )
    broken = runner.invoke(audit_app, _verify_args(ctx))
    assert broken.exit_code == 1
    assert f"at event {created['id']}: content does not match its hash" in broken.output
