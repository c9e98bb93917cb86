"""The agent's token: every /v1 route needs it (401 problem otherwise), /healthz does not.

These run without Docker: the app is built over a client of a socket that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.auth import token_accepted
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.settings import AgentSettings

from .builders import make_token

TOKEN = make_token()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = AgentSettings(token=TOKEN, name="unit", data_dir=tmp_path)  # type: ignore[arg-type]
    nowhere = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    app = create_agent_app(settings, client=nowhere, gpu_probe=GpuReport)
    with TestClient(app) as test_client:
        yield test_client


def v1_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every HTTP route under /v1, from the OpenAPI document, with sample path parameters."""
    routes = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/v1"):
            path = path.replace("{path}", "f.txt").replace("{workload_id}", "w1")
            path = path.replace("{container_id}", "c1")
            routes += [(method.upper(), path) for method in sorted(operations)]
    return routes


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-xxxxxxxx", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
    ids=["missing", "wrong", "other-scheme", "longer", "empty"],
)
def test_every_v1_route_needs_the_token(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    routes = v1_routes(client)
    assert len(routes) >= 11  # inventory, containers (6), files (4), workspace

    for method, path in routes:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"].endswith("/unauthenticated")


def test_healthz_is_open_and_says_docker_is_down(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert (body["status"], body["agent"], body["docker"]) == ("ok", "unit", "unavailable")


def test_inventory_reports_a_docker_that_does_not_answer(client: TestClient) -> None:
    response = client.get("/v1/inventory", headers={"Authorization": f"Bearer {TOKEN}"})
    body = response.json()
    assert response.status_code == 200
    assert body["docker"] is None
    assert body["docker_error"]
    assert (body["gpu_source"], body["gpus"]) == ("none", [])
    assert body["cpu_count"] >= 1
    assert body["ram_total_mib"] > 0


def test_containers_with_docker_down_is_a_503_problem(client: TestClient) -> None:
    response = client.get("/v1/containers", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.json()["type"].endswith("/runtime-unavailable")


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer {TOKEN[:-1]}", False),
        (TOKEN, False),
        (None, False),
    ],
    # Named, not shown: the token is random, and pytest-xdist's workers must collect
    # the same test ids.
    ids=["bearer", "lower-case-scheme", "one-short", "no-scheme", "missing"],
)
def test_token_comparison(header: str | None, accepted: bool) -> None:
    assert token_accepted(TOKEN, header) is accepted


@pytest.mark.parametrize(
    "token",
    ["T", "changeme", "short-token", "CHANGETHIS"],
    ids=["one-char", "placeholder", "short", "upper"],
)
def test_weak_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        AgentSettings(token=token)  # type: ignore[arg-type]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUYARD_AGENT_TOKEN", TOKEN)
    monkeypatch.setenv("GPUYARD_AGENT_PUBLISH_ADDRESS", "10.0.0.7")
    settings = AgentSettings()  # type: ignore[call-arg]
    assert settings.token.get_secret_value() == TOKEN
    assert (settings.host, settings.port, settings.publish_address) == (
        "127.0.0.1",
        8090,
        "10.0.0.7",
    )
    assert TOKEN not in repr(settings)
