"""`gpuyard server ssh` and its settings commands against a served app and a real sshd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories.app import admin_caller, mint_token, sqlite_only
from factories.live import served
from support.sshd import SshServer
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli.main import app
from gpuyard.log import configure_logging
from gpuyard.runtimes.host_ssh import generate_key, public_key_facts
from gpuyard.services.context import ServiceContext


@sqlite_only
def test_set_show_run_unpin_and_forget_from_the_cli(
    ctx: ServiceContext,
    sshd: SshServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_logging: None,
) -> None:
    configure_logging("WARNING")  # the app logs on stderr, not into the CLI's stdout
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin_caller(ctx).user_id))
    private, facts = generate_key()
    sshd.authorize(facts.public_key)
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(private)
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        server = "h100-node-1"
        bad = runner.invoke(
            app, ["server", "ssh-set", server, "--key", str(key_file), "--user", "no body"]
        )
        assert bad.exit_code == 1
        assert "--user" in bad.output  # the flag the user typed, not the API's field
        no_host = runner.invoke(
            app, ["server", "ssh-set", server, "--key", str(key_file), "--user", sshd.user]
        )
        assert no_host.exit_code == 1
        assert "--host" in no_host.output
        set_ = runner.invoke(
            app,
            ["server", "ssh-set", server, "--key", str(key_file), "--user", sshd.user,
             "--host", "127.0.0.1", "--port", str(sshd.port), "-o", "json"],
        )  # fmt: skip
        assert set_.exit_code == 0, set_.output
        assert json.loads(set_.stdout)["key_fingerprint"] == facts.fingerprint

        ran = runner.invoke(
            app, ["server", "ssh", server, "--", "sh", "-c", "echo on-host; exit 5"]
        )
        assert ran.exit_code == 5, ran.output
        assert ran.stdout == "on-host\n"
        fed = runner.invoke(app, ["server", "ssh", "-i", server, "--", "cat"], input="piped\n")
        assert fed.exit_code == 0
        assert fed.stdout == "piped\n"
        no_terminal = runner.invoke(app, ["server", "ssh", server])
        assert no_terminal.exit_code == 2
        assert "stdin is not a terminal" in no_terminal.output

        shown = runner.invoke(app, ["server", "ssh-show", server])
        assert shown.exit_code == 0, shown.output
        assert public_key_facts(sshd.host_public_key)[1] in shown.stdout
        assert f"{sshd.user}@127.0.0.1:{sshd.port}" in shown.stdout

        sshd.change_host_key()
        refused = runner.invoke(app, ["server", "ssh", server, "--", "true"])
        assert refused.exit_code == 1
        assert "changed" in refused.output
        assert "ssh-unpin" in refused.output
        assert runner.invoke(app, ["server", "ssh-unpin", server]).exit_code == 0
        assert runner.invoke(app, ["server", "ssh", server, "--", "true"]).exit_code == 0

        assert runner.invoke(app, ["server", "ssh-forget", server]).exit_code == 0
        gone = runner.invoke(app, ["server", "ssh-show", server])
        assert gone.exit_code == 1
        assert "no SSH settings" in gone.output
