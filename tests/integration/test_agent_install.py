"""`gpuyard agent install` over SSH against a real sshd on 127.0.0.1 (tests/support/sshd.py),
into a temp prefix: a virtualenv made from this interpreter's base Python, gpuyard
installed offline from a wheelhouse (tests/support/wheelhouse.py), the env file and the
systemd unit written, the agent started (this sandbox has no systemd: the installer sees
that and starts it in the background, as it says), then registered with a served
control plane, which reaches it; the process is stopped by its pid afterwards."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import httpx
import pytest
from factories.app import admin_caller, make_context, make_settings, mint_token
from factories.live import served
from support.local_server import free_port
from support.sshd import SshServer
from support.wheelhouse import build_wheelhouse
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli.main import app
from gpuyard.log import configure_logging
from gpuyard.runtimes.agent_install import InstallPlan, unit_text
from gpuyard.runtimes.host_ssh import generate_key, public_key_facts
from gpuyard.services.context import ServiceContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(PROJECT, tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def ctx(tmp_path: Path, restore_logging: None) -> Iterator[ServiceContext]:
    configure_logging("WARNING")  # the app logs on stderr, not into the CLI's stdout
    context = make_context(make_settings(tmp_path / "data", None, demo=False))
    yield context
    context.db.dispose()


def _stop(pid_file: Path) -> None:
    """Stop the agent the installer started, by the pid it recorded."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def test_install_starts_and_registers_an_agent_over_ssh(
    ctx: ServiceContext,
    sshd: SshServer,
    wheelhouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin_caller(ctx).user_id))
    private, facts = generate_key()
    sshd.authorize(facts.public_key)
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(private)
    prefix = tmp_path / "host"
    agent_port = free_port()
    runner = CliRunner()
    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        made = runner.invoke(app, ["clusters", "create", "hosts", "--kind", "docker"])
        assert made.exit_code == 0, made.output
        try:
            installed = runner.invoke(
                app,
                ["agent", "install", "--host", "127.0.0.1", "--port", str(sshd.port),
                 "--user", sshd.user, "--ssh-key", str(key_file), "--cluster", "hosts",
                 "--name", "installed-1", "--agent-port", str(agent_port),
                 "--prefix", str(prefix), "--python", sys._base_executable,
                 "--wheelhouse", str(wheelhouse), "--save-ssh"],
            )  # fmt: skip
            assert installed.exit_code == 0, installed.output
            for step in ("connect", "check", "venv", "upload", "install", "configure"):
                assert step in installed.output
            assert "no systemd on this host" in installed.output
            assert installed.stdout.startswith("installed-1 online")

            env_file = prefix / "etc/gpuyard/agent.env"
            assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
            token = next(
                line.split("=", 1)[1].strip("'")
                for line in env_file.read_text().splitlines()
                if line.startswith("GPUYARD_AGENT_TOKEN=")
            )
            assert len(token) >= 32
            assert token not in installed.output  # never printed
            plan = InstallPlan(
                prefix=PurePosixPath(prefix.as_posix()),
                python=sys._base_executable,
                token=token,
                agent_name="installed-1",
                bind="127.0.0.1",
                port=agent_port,
                version=None,
                wheelhouse=wheelhouse,
            )
            unit = prefix / "etc/systemd/system/gpuyard-agent.service"
            assert unit.read_text() == unit_text(plan)
            assert (prefix / "opt/gpuyard-agent/venv/bin/gpuyard").exists()

            # The agent answers, with the token the control plane was given.
            agent = f"http://127.0.0.1:{agent_port}"
            assert httpx.get(f"{agent}/healthz").json()["agent"] == "installed-1"
            assert httpx.get(f"{agent}/v1/inventory").status_code == 401
            inventory = httpx.get(
                f"{agent}/v1/inventory", headers={"Authorization": f"Bearer {token}"}
            )
            assert inventory.status_code == 200
            listed = json.loads(runner.invoke(app, ["servers", "-o", "json"]).stdout)
            server = next(s for s in listed if s["name"] == "installed-1")
            assert server["status"] == "online"

            # The host key is pinned for the next install, and the SSH access was stored.
            known = (tmp_path / "config/gpuyard/known_hosts").read_text()
            assert f"127.0.0.1:{sshd.port} {' '.join(sshd.host_public_key.split()[:2])}" in known
            shown = runner.invoke(app, ["server", "ssh-show", "installed-1"])
            assert public_key_facts(facts.public_key)[1] in shown.stdout
            ran = runner.invoke(app, ["server", "ssh", "installed-1", "--", "cat", str(env_file)])
            assert ran.exit_code == 0
            assert "GPUYARD_AGENT_NAME=installed-1" in ran.stdout
        finally:
            _stop(prefix / "run/gpuyard-agent.pid")
