"""`gpuyard pools ...` against a real app served over HTTP on 127.0.0.1 (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import admin_caller, mint_token, settle, sqlite_only
from factories.live import served
from sqlalchemy import select
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli import pool_commands
from gpuyard.cli.pool_commands import pools_app
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.tending import tend_pools
from gpuyard.store.fleet_tables import ClusterRow


@sqlite_only
def test_pools_cli_create_status_resize_reinit_rm(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = mint_token(ctx, admin_caller(ctx).user_id)
    with ctx.db.read() as session:
        cluster_id = session.scalar(select(ClusterRow.id))
    monkeypatch.setattr(pool_commands.console, "width", 200)  # whole table cells
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        monkeypatch.setenv("GPUYARD_TOKEN", token)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        args = ["create", "web", "--type", "nginx", "--image", "nginx:1.27", "--size", "2"]
        made = runner.invoke(
            pools_app, [*args, "--ports", "31000-31010", "--cluster", str(cluster_id)]
        )
        assert made.exit_code == 0, made.output
        assert "created pool web" in made.output
        tend_pools(ctx)
        settle(ctx)
        shown = runner.invoke(pools_app, ["status", "web"])
        assert shown.exit_code == 0, shown.output
        assert "2 available, 0 warming, 0 assigned (target 2)" in shown.output
        assert "pool_nginx_0_" in shown.output
        resized = runner.invoke(pools_app, ["resize", "web", "3"])
        assert resized.exit_code == 0, resized.output
        assert "(target 3)" in resized.output
        listed = runner.invoke(pools_app, ["ls"])
        assert "web" in listed.output
        reinit = runner.invoke(pools_app, ["reinit", "web"])
        assert reinit.exit_code == 0, reinit.output
        assert "0 available" in reinit.output
        bad = runner.invoke(pools_app, ["resize", "web", "999"])
        assert bad.exit_code == 1
        assert "target_size" in bad.output
        gone = runner.invoke(pools_app, ["rm", "web"])
        assert gone.exit_code == 0, gone.output
        missing = runner.invoke(pools_app, ["status", "web"])
        assert missing.exit_code == 1
