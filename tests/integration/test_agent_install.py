"""`gpuyard agent install` over SSH against a real sshd on 127.0.0.1 (tests/support/sshd.py),
into a temp prefix: a virtualenv made from this interpreter's base Python, gpuyard
installed offline from a wheelhouse (tests/support/wheelhouse.py), the env file and the
systemd unit written, the agent started (this sandbox has no systemd: the installer sees
that and starts it in the background, as it says), then registered with a served
control plane, which reaches it; the process is stopped by its pid afterwards."""

from __future__ import annotations

import asyncio
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
from factories.certificates import self_signed
from factories.live import served
from sqlalchemy import select
from support.local_server import free_port
from support.sshd import SshServer
from support.wheelhouse import build_wheelhouse
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus

from gpuyard.api.app import create_app
from gpuyard.cli.main import app
from gpuyard.domain.replica_access import ExecTarget
from gpuyard.log import configure_logging
from gpuyard.runtimes.agent_install import InstallPlan, unit_text
from gpuyard.runtimes.docker import pinned_tls
from gpuyard.runtimes.host_ssh import generate_key, public_key_facts
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.health import probe_servers
from gpuyard.store.fleet_tables import ServerRow

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


async def _first_exec_answer(target: ExecTarget) -> str:
    """What the agent answers first on an exec session: its error frame, or the refusal
    of the upgrade (both only after the TLS handshake succeeded)."""
    assert target.opener is not None
    try:
        async with target.opener() as stream:
            async for frame in stream:
                return frame if isinstance(frame, str) else frame.decode()
    except InvalidStatus as exc:
        return json.dumps({"type": "error", "status": exc.response.status_code})
    return ""


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
            assert "tls" in installed.output  # the certificate step

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
                tls_names=("127.0.0.1", "localhost"),
            )
            unit = prefix / "etc/systemd/system/gpuyard-agent.service"
            assert unit.read_text() == unit_text(plan)
            assert (prefix / "opt/gpuyard/venv/bin/gpuyard").exists()

            # The agent answers over TLS with its self-signed certificate (no public CA
            # vouches for it), and with the token the control plane was given.
            agent = f"https://127.0.0.1:{agent_port}"
            certificate = prefix / "etc/gpuyard/agent-tls/cert.pem"
            assert stat.S_IMODE((prefix / "etc/gpuyard/agent-tls/key.pem").stat().st_mode) == 0o600
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"{agent}/healthz")
            pinned = pinned_tls(certificate.read_text())
            assert httpx.get(f"{agent}/healthz", verify=pinned).json()["agent"] == "installed-1"
            assert httpx.get(f"{agent}/v1/inventory", verify=pinned).status_code == 401
            inventory = httpx.get(
                f"{agent}/v1/inventory", headers={"Authorization": f"Bearer {token}"}, verify=pinned
            )
            assert inventory.status_code == 200
            # The control plane pinned that certificate: its probes and calls get through.
            listed = json.loads(runner.invoke(app, ["servers", "-o", "json"]).stdout)
            server = next(s for s in listed if s["name"] == "installed-1")
            assert server["status"] == "online"
            assert server["agent_url"] == agent
            assert ctx.agents.client_for("installed-1").inventory().agent_name == "installed-1"
            with ctx.db.write() as session:  # as if it had missed a probe
                row = session.scalars(
                    select(ServerRow).where(ServerRow.name == "installed-1")
                ).one()
                row.missed_probes = 1
            probe_servers(ctx)  # the health loop's tick, through the pinned certificate
            with ctx.db.read() as session:
                row = session.scalars(
                    select(ServerRow).where(ServerRow.name == "installed-1")
                ).one()
                assert row.missed_probes == 0
                assert row.agent_tls_cert == certificate.read_text()
            # Exec sessions go over wss:// trusting the same certificate (the container is
            # unknown: the agent's own refusal comes back through the TLS session).
            target = ctx.agents.client_for("installed-1").exec_target("no-such-container", ["true"])
            assert target.url.startswith("wss://")
            assert target.opener is not None
            answer = json.loads(asyncio.run(_first_exec_answer(target)))
            assert answer["type"] == "error"  # the agent's own words (no dockerd here)
            assert answer["status"] in (404, 503)
            # Another certificate is refused, naming it: the pin is what is trusted.
            other = self_signed()
            refused = httpx.post(
                f"{url}/api/v1/servers",
                headers={"Authorization": f"Bearer {mint_token(ctx, admin_caller(ctx).user_id)}"},
                json={"name": "impostor", "cluster_id": server["cluster_id"], "agent_url": agent,
                      "agent_token": token, "agent_tls_cert": other},
            )  # fmt: skip
            assert refused.status_code == 422, refused.text
            assert [e["field"] for e in refused.json()["errors"]] == ["agent_tls_cert"]

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


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        pytest.param(["--prefix", "/tmp/a b"], "--prefix", id="a prefix with a space"),
        pytest.param(["--prefix", "relative"], "--prefix", id="a relative prefix"),
        pytest.param(["--prefix", "/tmp/../etc"], "--prefix", id="a prefix climbing out"),
        pytest.param(["--agent-bind", "-oX"], "--agent-bind", id="a bind like an option"),
        pytest.param(["--user", "root;id"], "--user", id="a user with a command"),
        pytest.param(["--host", "a b"], "--host", id="a host with a space"),
    ],
)
def test_hostile_install_options_are_refused_before_any_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], flag: str
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_URL", "http://127.0.0.1:9")  # never reached
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(generate_key()[0])
    base = {"--host": "127.0.0.1", "--user": "root", "--ssh-key": str(key_file),
            "--cluster": "hosts"}  # fmt: skip
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = [part for name, value in {**base, **given}.items() for part in (name, value)]
    refused = CliRunner().invoke(app, ["agent", "install", *options])
    assert refused.exit_code == 2, refused.output
    assert flag in refused.output
    assert not (tmp_path / "config/gpuyard/known_hosts").exists()


def test_a_key_file_that_is_no_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "id_ed25519"
    key_file.write_text("not a key")
    refused = CliRunner().invoke(
        app,
        ["agent", "install", "--host", "127.0.0.1", "--ssh-key", str(key_file),
         "--cluster", "hosts"],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "--ssh-key" in refused.output
