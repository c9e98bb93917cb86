"""The image catalog and registries through the API: CRUD, who may do what, refusals that
name the field and write nothing, and registry passwords encrypted at rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories.app import (
    add_user,
    authed_client,
    make_context,
    make_settings,
    mint_token,
    sqlite_only,
)
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from gpuyard.services.context import ServiceContext
from gpuyard.services.images import catalog, registries
from gpuyard.services.images.registries import registry_credentials
from gpuyard.store.images import registry_taken

NGINX: dict[str, Any] = {
    "name": "web-nginx",
    "reference": "nginx:1.27",
    "type": "nginx",
    "default_port": 80,
    "cpu": 0.5,
    "ram_gb": 0.5,
    "storage_gb": 1,
    "description": "a web server",
    "files_path": "/srv/www",
}


def _client_as(ctx: ServiceContext, role: str) -> TestClient:
    user_id = add_user(ctx, f"{role}@example.com", f"{role}-pass-123", role=role)
    return authed_client(ctx, mint_token(ctx, user_id))


def _count(ctx: ServiceContext, table: str) -> int:
    with ctx.db.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_catalog_round_trip_in_stored_units(client: TestClient, ctx: ServiceContext) -> None:
    created = client.post("/api/v1/images", json=NGINX)
    assert created.status_code == 201, created.text
    image = created.json()
    assert {k: image[k] for k in NGINX} == NGINX
    assert image["gpu"] == 0
    with ctx.db.read() as session:
        row = session.execute(
            text("SELECT cpu_milli, ram_mib, storage_mib FROM images WHERE id = :id"),
            {"id": image["id"]},
        ).one()
    assert tuple(row) == (500, 512, 1024)

    listed = client.get("/api/v1/images", params={"type": "nginx"}).json()
    assert listed["count"] == 1
    assert listed["data"][0]["id"] == image["id"]
    assert client.get("/api/v1/images", params={"type": "python"}).json()["count"] == 0

    changed = client.patch(
        f"/api/v1/images/{image['id']}", json={"cpu": 2, "default_port": None}
    ).json()
    assert changed["cpu"] == 2
    assert changed["ram_gb"] == 0.5
    assert changed["default_port"] is None
    assert changed["files_path"] == NGINX["files_path"]

    assert client.delete(f"/api/v1/images/{image['id']}").status_code == 204
    assert client.get(f"/api/v1/images/{image['id']}").status_code == 404


@sqlite_only
def test_users_read_the_catalog_operators_keep_it(client: TestClient, ctx: ServiceContext) -> None:
    user, operator = _client_as(ctx, "user"), _client_as(ctx, "operator")
    assert user.post("/api/v1/images", json=NGINX).status_code == 403
    created = operator.post("/api/v1/images", json=NGINX)
    assert created.status_code == 201
    image_id = created.json()["id"]
    assert user.get(f"/api/v1/images/{image_id}").json()["name"] == "web-nginx"
    assert user.patch(f"/api/v1/images/{image_id}", json={"cpu": 4}).status_code == 403
    assert user.delete(f"/api/v1/images/{image_id}").status_code == 403
    assert operator.patch(f"/api/v1/images/{image_id}", json={"cpu": 4}).status_code == 200


BAD_IMAGES = [
    pytest.param({"reference": "Nginx:latest"}, "reference", id="upper-case repository"),
    pytest.param({"reference": "nginx:"}, "reference", id="empty tag"),
    pytest.param({"reference": "nginx:" + "t" * 129}, "reference", id="tag too long"),
    pytest.param({"reference": "a b"}, "reference", id="space"),
    pytest.param({"reference": "https://x/y"}, "reference", id="url"),
    pytest.param({"name": "Web Nginx"}, "name", id="name not a slug"),
    pytest.param({"type": "NGINX"}, "type", id="type not a slug"),
    pytest.param({"default_port": 70000}, "default_port", id="port out of range"),
    pytest.param({"cpu": 0.05}, "cpu", id="cpu below a step"),
    pytest.param({"gpu": 1.5}, "gpu", id="gpu neither whole nor a share"),
    pytest.param({"files_path": "relative/dir"}, "files_path", id="relative files path"),
    pytest.param({"files_path": "/srv/../etc"}, "files_path", id="files path with .."),
    pytest.param({"description": "x" * 5000}, "description", id="description too long"),
    pytest.param({"surprise": 1}, "surprise", id="unknown field"),
]


@sqlite_only
@pytest.mark.parametrize(("change", "field"), BAD_IMAGES)
def test_bad_images_are_refused_naming_the_field(
    client: TestClient, ctx: ServiceContext, change: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/images", json=NGINX | change)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _count(ctx, "images") == 0


@sqlite_only
def test_image_names_are_unique(client: TestClient, ctx: ServiceContext) -> None:
    assert client.post("/api/v1/images", json=NGINX).status_code == 201
    assert client.post("/api/v1/images", json=NGINX).status_code == 409
    other = client.post("/api/v1/images", json=NGINX | {"name": "other"}).json()
    assert (
        client.patch(f"/api/v1/images/{other['id']}", json={"name": "web-nginx"}).status_code == 409
    )
    assert _count(ctx, "images") == 2


def test_registry_password_is_encrypted_at_rest_and_never_returned(
    client: TestClient, ctx: ServiceContext
) -> None:
    response = client.post(
        "/api/v1/registries",
        json={
            "name": "local",
            "url": "http://127.0.0.1:5000",
            "username": "pusher",
            "password": "very-secret-registry-pass",
        },
    )
    assert response.status_code == 201, response.text
    registry = response.json()
    assert registry["url"] == "127.0.0.1:5000"
    assert registry["insecure"] is True
    assert registry["has_password"] is True
    assert "password" not in registry
    for path in ("/api/v1/registries", f"/api/v1/registries/{registry['id']}", "/api/v1/audit"):
        assert "very-secret" not in client.get(path).text
    with ctx.db.read() as session:
        raw = session.execute(
            text("SELECT password_enc FROM registries WHERE id = :id"), {"id": registry["id"]}
        ).scalar_one()
        audit = session.execute(text("SELECT details FROM audit_events")).scalars().all()
    assert raw.startswith(f"gpyenc:v1:{ctx.secret_box.key_id}:")
    assert "very-secret" not in raw
    assert not any("very-secret" in str(details) for details in audit)
    found = registry_credentials(ctx, registry["id"], None)
    assert found is not None
    assert found[1].password == "very-secret-registry-pass"
    assert "very-secret" not in repr(found[1])


@sqlite_only
def test_registries_are_admins_to_configure(client: TestClient, ctx: ServiceContext) -> None:
    operator, user = _client_as(ctx, "operator"), _client_as(ctx, "user")
    body = {"name": "hub", "url": "registry.example:5000"}
    assert operator.post("/api/v1/registries", json=body).status_code == 403
    created = client.post("/api/v1/registries", json=body)
    assert created.status_code == 201
    assert created.json()["insecure"] is False
    assert created.json()["has_password"] is False
    assert operator.get("/api/v1/registries").json()["count"] == 1
    assert user.get("/api/v1/registries").status_code == 403
    registry_id = created.json()["id"]
    assert operator.delete(f"/api/v1/registries/{registry_id}").status_code == 403
    assert client.delete(f"/api/v1/registries/{registry_id}").status_code == 204
    assert client.get(f"/api/v1/registries/{registry_id}").status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"url": "ftp://x"}, "url", id="scheme"),
        pytest.param({"url": "host:99999"}, "url", id="port out of range"),
        pytest.param({"url": "host/path"}, "url", id="path"),
        pytest.param({"password": "p"}, "username", id="password without user"),
        pytest.param({"name": "Has Space"}, "name", id="name"),
    ],
)
def test_bad_registries_are_refused_naming_the_field(
    client: TestClient, ctx: ServiceContext, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/registries", json={"name": "r", "url": "r.example"} | body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _count(ctx, "registries") == 0


@sqlite_only
def test_a_registry_address_is_taken_once(client: TestClient, ctx: ServiceContext) -> None:
    assert (
        client.post("/api/v1/registries", json={"name": "a", "url": "r.example"}).status_code == 201
    )
    again = client.post("/api/v1/registries", json={"name": "b", "url": "https://r.example/"})
    assert again.status_code == 409
    assert [e["field"] for e in again.json()["errors"]] == ["url"]


@sqlite_only
def test_simulated_servers_have_no_images(client: TestClient, ctx: ServiceContext) -> None:
    server_id = client.get("/api/v1/servers").json()["data"][0]["id"]
    before = _count(ctx, "audit_events")
    listed = client.get(f"/api/v1/servers/{server_id}/images")
    assert listed.status_code == 409
    assert "simulated" in listed.json()["detail"]
    pulled = client.post(f"/api/v1/servers/{server_id}/images/pull", json={"reference": "busybox"})
    assert pulled.status_code == 409
    built = client.post(
        f"/api/v1/servers/{server_id}/images/build",
        params={"tag": "x:1"},
        content=b"not a tar",
        headers={"Content-Type": "application/x-tar"},
    )
    assert built.status_code == 409
    removed = client.delete(f"/api/v1/servers/{server_id}/images", params={"reference": "x:1"})
    assert removed.status_code == 409
    assert _count(ctx, "audit_events") == before  # a refused operation is not audited
    bad = client.post(f"/api/v1/servers/{server_id}/images/pull", json={"reference": "UPPER"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "reference"
    unknown = client.post(
        f"/api/v1/servers/{server_id}/images/push",
        json={"source": "busybox", "registry_id": "nope"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "registry_id"
    assert client.get("/api/v1/servers/nope/images").status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"tag": "UPPER:1"}, "tag", id="bad tag"),
        pytest.param({"tag": "x" * 600}, "tag", id="tag too long"),
        pytest.param({"tag": "a:1", "dockerfile": "../Dockerfile"}, "dockerfile", id="escape"),
        pytest.param({"tag": "a:1", "dockerfile": "/Dockerfile"}, "dockerfile", id="absolute"),
        pytest.param({"tag": "a:1", "dockerfile": "a b"}, "dockerfile", id="space"),
        pytest.param({"tag": "a\x00b"}, "tag", id="nul"),
        pytest.param({}, "tag", id="no tag"),
    ],
)
def test_build_parameters_are_checked_before_the_context(
    client: TestClient, ctx: ServiceContext, params: dict[str, str], field: str
) -> None:
    server_id = client.get("/api/v1/servers").json()["data"][0]["id"]
    before = _count(ctx, "audit_events")

    def unread_context() -> Iterator[bytes]:
        raise AssertionError("the build context was read before its parameters were checked")
        yield b""  # a generator: it raises only when the app reads the body

    response = client.post(
        f"/api/v1/servers/{server_id}/images/build",
        params=params,
        content=unread_context(),
        headers={"Content-Type": "application/x-tar"},
    )
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _count(ctx, "audit_events") == before


def test_a_build_context_over_the_limit_is_refused(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path, None, max_build_context_mib=1))
    client = authed_client(ctx)
    server_id = client.get("/api/v1/servers").json()["data"][0]["id"]
    for headers in ({"Content-Type": "application/x-tar"}, {"Transfer-Encoding": "chunked"}):
        chunks = iter([b"x" * (512 * 1024)] * 3)  # 1.5 MiB, its length not declared
        body = b"x" * (1024 * 1024 + 1) if "Content-Type" in headers else chunks
        response = client.post(
            f"/api/v1/servers/{server_id}/images/build",
            params={"tag": "a:1"},
            content=body,
            headers=headers,
        )
        assert response.status_code == 413, response.text
        assert "GPUYARD_MAX_BUILD_CONTEXT_MIB" in response.text
    ctx.db.dispose()


def test_an_image_name_taken_after_the_check_is_a_conflict(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.post("/api/v1/images", json=NGINX)
    assert first.status_code == 201
    other = client.post("/api/v1/images", json=NGINX | {"name": "other"}).json()
    audits = _count(ctx, "audit_events")
    # The check runs before a concurrent request commits the same name: it sees nothing.
    monkeypatch.setattr(catalog, "image_name_taken", lambda *_a, **_k: False)
    created = client.post("/api/v1/images", json=NGINX)
    renamed = client.patch(f"/api/v1/images/{other['id']}", json={"name": NGINX["name"]})
    for response in (created, renamed):
        assert response.status_code == 409, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["name"]
    assert _count(ctx, "images") == 2
    assert client.get(f"/api/v1/images/{other['id']}").json()["name"] == "other"
    assert _count(ctx, "audit_events") == audits


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"name": "a", "url": "elsewhere.example"}, "name", id="name"),
        pytest.param({"name": "b", "url": "https://r.example/"}, "url", id="url"),
    ],
)
def test_a_registry_taken_after_the_check_is_a_conflict(
    client: TestClient,
    ctx: ServiceContext,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, str],
    field: str,
) -> None:
    added = client.post("/api/v1/registries", json={"name": "a", "url": "r.example"})
    assert added.status_code == 201
    audits = _count(ctx, "audit_events")
    checks: list[str | None] = []

    def check_before_the_other_commit(session: Session, name: str, address: str) -> str | None:
        # The first check runs before a concurrent request commits: it sees nothing.
        checks.append(registry_taken(session, name, address) if checks else None)
        return checks[-1]

    monkeypatch.setattr(registries, "registry_taken", check_before_the_other_commit)
    response = client.post("/api/v1/registries", json=body)
    assert response.status_code == 409, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert _count(ctx, "registries") == 1
    assert _count(ctx, "audit_events") == audits
