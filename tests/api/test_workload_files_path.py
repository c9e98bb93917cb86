"""A workload's files_path and the launch from the catalog (image_id), through the API:
the default, the stored value, refusals that name the field and write nothing, and the one
rule of the catalog launch (left-out fields from the image, given fields win). SQLite and
PostgreSQL (the ``client`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest
from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpuyard.services.context import ServiceContext

WEB: dict[str, Any] = {
    "name": "web",
    "reference": "registry.example:5000/team/web:1.0",
    "type": "web",
    "default_port": 8080,
    "cpu": 0.5,
    "ram_gb": 0.25,
    "storage_gb": 1,
    "gpu": 0,
    "files_path": "/srv/www",
}


def _count(ctx: ServiceContext, table: str) -> int:
    with ctx.db.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _image(client: TestClient, **changes: Any) -> dict[str, Any]:
    created = client.post("/api/v1/images", json={**WEB, **changes})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _launch(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_files_path_defaults_to_workspace_and_is_stored_as_given(client: TestClient) -> None:
    plain = _launch(client, {"image": "busybox"})
    assert plain["files_path"] == "/workspace"
    chosen = _launch(client, {"image": "busybox", "files_path": "/srv/www/"})
    assert chosen["files_path"] == "/srv/www"  # one trailing slash dropped
    assert client.get(f"/api/v1/workloads/{chosen['id']}").json()["files_path"] == "/srv/www"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="the root"),
        pytest.param("/etc", id="/etc"),
        pytest.param("/usr/share/nginx/html", id="under /usr"),
        pytest.param("/proc/1", id="under /proc"),
        pytest.param("/srv/../etc", id="dot-dot"),
        pytest.param("srv/www", id="relative"),
        pytest.param("/srv//www", id="empty segment"),
        pytest.param("/srv/" + "a" * 1100, id="too long"),
    ],
)
def test_a_refused_files_path_is_a_422_naming_it_and_writes_nothing(
    client: TestClient, ctx: ServiceContext, path: str
) -> None:
    before = _count(ctx, "workloads")
    response = client.post("/api/v1/workloads", json={"image": "busybox", "files_path": path})
    assert response.status_code == 422, response.text
    assert "files_path" in {e["field"] for e in response.json()["errors"]}
    assert _count(ctx, "workloads") == before


def test_a_launch_from_the_catalog_takes_what_it_leaves_out_from_the_image(
    client: TestClient,
) -> None:
    image = _image(client)
    launched = _launch(client, {"image_id": image["id"]})
    assert launched["image"] == WEB["reference"]
    assert [p["container_port"] for p in launched["ports"]] == [8080]
    assert (launched["cpu"], launched["ram_gb"], launched["storage_gb"], launched["gpu"]) == (
        0.5,
        0.25,
        1,
        0,
    )
    assert launched["files_path"] == "/srv/www"


def test_fields_the_launch_gives_win_over_the_image(client: TestClient) -> None:
    image = _image(client)
    body = {
        "image_id": image["id"],
        "image": "busybox:1",
        "cpu": 1,
        "ports": [],
        "files_path": "/data",
    }
    launched = _launch(client, body)
    assert launched["image"] == "busybox:1"
    assert launched["cpu"] == 1
    assert launched["ports"] == []
    assert launched["files_path"] == "/data"
    assert launched["ram_gb"] == 0.25  # left out: the image's
    assert launched["storage_gb"] == 1


def test_a_null_counts_as_left_out(client: TestClient) -> None:
    image = _image(client)
    launched = _launch(client, {"image_id": image["id"], "image": None, "files_path": None})
    assert launched["image"] == WEB["reference"]
    assert launched["files_path"] == "/srv/www"


def test_an_image_without_port_or_files_path_leaves_the_api_defaults(client: TestClient) -> None:
    bare = _image(client, name="bare", default_port=None, files_path=None)
    launched = _launch(client, {"image_id": bare["id"]})
    assert launched["ports"] == []
    assert launched["files_path"] == "/workspace"


def test_a_plain_user_launches_from_the_catalog(client: TestClient, ctx: ServiceContext) -> None:
    image = _image(client)
    user_id = add_user(ctx, "carol@example.com", "carol-pass-123")
    with authed_client(ctx, mint_token(ctx, user_id)) as user:
        launched = _launch(user, {"image_id": image["id"], "name": "site"})
    assert launched["owner_id"] == user_id
    assert launched["files_path"] == "/srv/www"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"image_id": "no-such-image"}, "image_id", id="unknown image"),
        pytest.param({"cpu": 1}, "image", id="neither image nor image_id"),
        pytest.param({"image": None}, "image", id="image null without image_id"),
    ],
)
def test_launch_refusals_name_the_field_and_write_nothing(
    client: TestClient, ctx: ServiceContext, body: dict[str, Any], field: str
) -> None:
    before = _count(ctx, "workloads")
    response = client.post("/api/v1/workloads", json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert _count(ctx, "workloads") == before


def test_the_catalog_refuses_a_files_path_no_launch_could_use(client: TestClient) -> None:
    response = client.post("/api/v1/images", json={**WEB, "files_path": "/usr/share/nginx/html"})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["files_path"]
