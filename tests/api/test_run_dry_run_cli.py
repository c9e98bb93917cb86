"""`gpuyard run --dry-run` against a real app served over HTTP on 127.0.0.1 (SQLite): it
prints where the request would go, whom it would preempt, or why it would wait, and
submits nothing; a request that can never run exits 1 naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import admin_caller, authed_client, mint_token, settle, sqlite_only
from factories.live import served
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli import client_commands
from gpuyard.cli.main import app
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.submission import WorkloadFilter, list_workloads


@sqlite_only
def test_run_dry_run_prints_the_plan_and_submits_nothing(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = admin_caller(ctx)
    with authed_client(ctx) as api:
        for i in range(2):
            body = {"image": "x", "name": f"fill-{i}", "gpu": 8, "gpu_model": "H100"}
            created = api.post("/api/v1/workloads", json={**body, "priority": 1, "duration_s": 60})
            assert created.status_code == 201, created.text
    settle(ctx)
    before = list_workloads(ctx, admin, WorkloadFilter(), 100, 0)[1]
    monkeypatch.setattr(client_commands.console, "width", 200)
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin.user_id))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        placed = runner.invoke(
            app, ["run", "busybox", "--gpu", "2", "--gpu-model", "A100", "--dry-run"]
        )
        assert placed.exit_code == 0, placed.output
        assert "would start now" in placed.output
        assert "replica 0 on a100-node-" in placed.output

        h100 = ["run", "busybox", "--gpu", "8", "--gpu-model", "H100", "--dry-run"]
        preempts = runner.invoke(app, [*h100, "--priority", "5"])
        assert preempts.exit_code == 0, preempts.output
        assert "preempting fill-" in preempts.output

        waits = runner.invoke(app, [*h100, "--priority", "1"])
        assert waits.exit_code == 0, waits.output
        assert "would wait" in waits.output
        assert "estimated start: 20" in waits.output  # the fillers declared 60 s

        never = runner.invoke(
            app, ["run", "busybox", "--gpu", "1", "--gpu-model", "B200", "--dry-run"]
        )
        assert never.exit_code == 1
        assert "--gpu-model:" in never.output
        assert "H100" in never.output
    assert list_workloads(ctx, admin, WorkloadFilter(), 100, 0)[1] == before


@sqlite_only
def test_run_and_resize_name_the_limit_a_request_is_past(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 21: `gpuyard run` (with and without --dry-run) exits 1 naming the flag and
    the team's limit when the request alone is past it; `gpuyard resize` does when the
    new size is, and says the team would go over it with its other work (409)."""
    admin = admin_caller(ctx)
    with authed_client(ctx) as api:
        team = api.post("/api/v1/teams", json={"name": "ml", "quota": {"gpu": 4}})
        assert team.status_code == 201, team.text
        for name in ("grows", "other"):
            body = {"image": "x", "name": name, "gpu": 2, "team_id": team.json()["id"]}
            assert api.post("/api/v1/workloads", json=body).status_code == 201
    settle(ctx)
    before = list_workloads(ctx, admin, WorkloadFilter(), 100, 0)[1]
    monkeypatch.setattr(client_commands.console, "width", 200)
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin.user_id))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        for dry_run in (["--dry-run"], []):
            refused = runner.invoke(app, ["run", "busybox", "--gpu", "8", "--team", "ml", *dry_run])
            assert refused.exit_code == 1, refused.output
            assert "--gpu: team ml's GPU limit is 4 GPUs; this asks 8 GPUs" in refused.output

        alone = runner.invoke(app, ["resize", "grows", "--gpu", "5"])
        assert alone.exit_code == 1, alone.output
        assert "--gpu: team ml's GPU limit is 4 GPUs; this asks 5 GPUs" in alone.output
        with_usage = runner.invoke(app, ["resize", "grows", "--gpu", "3"])
        assert with_usage.exit_code == 1, with_usage.output
        assert "--gpu: team ml would hold 5 GPUs, over team ml's GPU limit of 4" in (
            with_usage.output
        )
        assert "keeps running at its size" in with_usage.output
    assert list_workloads(ctx, admin, WorkloadFilter(), 100, 0)[1] == before
