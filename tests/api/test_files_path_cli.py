"""`gpuyard run --files-path` and `gpuyard pools create --files-path` against a real app
served over HTTP on 127.0.0.1 (SQLite): the value reaches the API, a refused one exits 1
naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import admin_caller, mint_token, sqlite_only
from factories.live import served
from sqlalchemy import select
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli import client_commands, pool_commands
from gpuyard.cli.main import app
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.specs import list_pools
from gpuyard.services.workloads.submission import WorkloadFilter, list_workloads
from gpuyard.store.fleet_tables import ClusterRow


@sqlite_only
def test_files_path_options(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = admin_caller(ctx)
    token = mint_token(ctx, admin.user_id)
    with ctx.db.read() as session:
        cluster_id = str(session.scalar(select(ClusterRow.id)))
    for module in (client_commands, pool_commands):
        monkeypatch.setattr(module.console, "width", 200)
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        monkeypatch.setenv("GPUYARD_TOKEN", token)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        ran = runner.invoke(app, ["run", "busybox", "--name", "site", "--files-path", "/srv/www"])
        assert ran.exit_code == 0, ran.output
        refused = runner.invoke(app, ["run", "busybox", "--files-path", "/etc/nginx"])
        assert refused.exit_code == 1
        assert "--files-path:" in refused.output  # the flag the user typed
        pool = ["pools", "create", "web", "--type", "web", "--image", "web:1", "--ports"]
        where = ["31000-31010", "--cluster", cluster_id, "--files-path", "/srv/www"]
        made = runner.invoke(app, [*pool, *where])
        assert made.exit_code == 0, made.output

    workloads, _count = list_workloads(ctx, admin, WorkloadFilter(name="site"), 10, 0)
    assert [w.files_path for w in workloads] == ["/srv/www"]
    pools, _total = list_pools(ctx, 10, 0)
    assert [p.spec.files_path for p in pools] == ["/srv/www"]
