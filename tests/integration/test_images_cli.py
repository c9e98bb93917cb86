"""`gpuyard images` and `gpuyard registries` against a served API over a real agent and
dockerd: the catalog's CRUD, a build from a local context directory whose log the command
prints, the images present, and a failing build that exits 1 with the error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import login, make_context, make_settings
from factories.docker_fleet import Fleet, docker_fleet
from fastapi.testclient import TestClient
from support.dockerd import DockerServer
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli.main import app as cli
from gpuyard.services.context import ServiceContext
from integration.cluster import Served


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", None, demo=False))
    yield context
    context.db.dispose()


@pytest.fixture
def fleet(ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path) -> Iterator[Fleet]:
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a"]) as made:
        yield made


@pytest.fixture
def gpuyard(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A runner of the `gpuyard` command against the API served on 127.0.0.1."""
    served = Served(lambda: create_app(ctx))
    served.start()
    monkeypatch.setenv("GPUYARD_URL", served.url)
    monkeypatch.setenv("GPUYARD_TOKEN", login(TestClient(create_app(ctx))))
    try:
        yield CliRunner()
    finally:
        served.stop()


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_catalog_commands(gpuyard: CliRunner) -> None:
    created = run(
        gpuyard, "images", "create", "web", "--reference", "nginx:1.27", "--type", "nginx",
        "--port", "80", "--files-path", "/srv/www",
    )  # fmt: skip
    assert re.search(r"web [0-9a-f]{32} created", created)
    assert "nginx:1.27" in run(gpuyard, "images", "list", "--type", "nginx")
    assert "nginx:1.27" not in run(gpuyard, "images", "list", "--type", "python")
    run(gpuyard, "images", "update", "web", "--cpu", "2")
    assert '"cpu": 2' in run(gpuyard, "images", "show", "web")
    refused = run(gpuyard, "images", "create", "web", "--reference", "x", "--type", "t", code=1)
    assert "already exists" in refused
    run(gpuyard, "images", "delete", "web")
    assert "nginx:1.27" not in run(gpuyard, "images", "list")

    run(gpuyard, "registries", "create", "local", "--url", "http://127.0.0.1:5000",
        "--username", "u", "--password", "secret-pass-1")  # fmt: skip
    listed = run(gpuyard, "registries", "list")
    assert "127.0.0.1:5000" in listed
    assert "secret-pass-1" not in listed


def test_build_and_present_commands(
    gpuyard: CliRunner, fleet: Fleet, dockerd: DockerServer, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {dockerd.image}\nCOPY greeting /greeting\nRUN cat /greeting\n"
    )
    (context / "greeting").write_text("hello-from-the-cli-context\n")
    built = run(gpuyard, "images", "build", "host-a", str(context), "--tag", "cli/app:1")
    assert "hello-from-the-cli-context" in built  # the RUN step's output, streamed
    assert "done" in built
    assert "cli/app:1" in run(gpuyard, "images", "present", "host-a")
    run(gpuyard, "images", "remove", "host-a", "cli/app:1")
    assert "cli/app:1" not in run(gpuyard, "images", "present", "host-a")
    assert "not found" in run(gpuyard, "images", "remove", "host-a", "cli/app:1", code=1)

    (context / "Dockerfile").write_text(f"FROM {dockerd.image}\nRUN exit 7\n")
    failed = run(gpuyard, "images", "build", "host-a", str(context), "--tag", "cli/bad:1", code=1)
    assert "error" in failed
    assert "7" in failed
