"""deploy/ansible: the playbook and its roles gpuyard_server and gpuyard_agent, really run.

- `ansible-playbook --syntax-check` accepts the playbook with the example inventory.
- The playbook runs against this machine (`ansible_connection=local`, in both groups) into
  a temporary root (`gpuyard_root`), from a wheel built from this checkout and a wheelhouse
  archive, with no index: one venv, the 0600 settings files and the units are there;
  systemd is not running in the sandbox, so the run says it did not start the services and
  enables them for the next boot instead.
- The agent and the server it installed start as their units say (ExecStart,
  EnvironmentFile, Environment, WorkingDirectory): the agent answers /healthz, and /metrics
  only with the token it was given; the server is ready and its first admin, from the
  settings file, logs in.
- The units it wrote say what deploy/systemd/ says, and `systemd-analyze verify` accepts them.
- A new wheel is reinstalled and notifies both services' restart handlers.
- A second run changes nothing; weak secrets are refused before anything is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.local_server import free_port

from gpuyard import __version__

from .files import DEPLOY, read_env_file, unit_command, unit_entries
from .wheelhouse import build_project_wheel, make_wheelhouse_archive

ANSIBLE_DIR = DEPLOY / "ansible"
PLAYBOOK = ANSIBLE_DIR / "playbook.yml"
AGENT_UNIT = DEPLOY / "systemd" / "gpuyard-agent.service"
SERVER_UNIT = DEPLOY / "systemd" / "gpuyard-server.service"
TOKEN = "provision-test-token-" + "x" * 24
AGENT_NAME = "provision-test"
SECRET_KEY = "provision-test-secret-key-" + "k" * 32
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "provision-admin-password"
BOTH_GROUPS = ("gpuyard_servers", "gpuyard_agents")

#: Every test here needs ansible-playbook (CI installs ansible-core: a skip fails it there);
#: the one that also needs systemd-analyze adds no such mark (as in test_deploy_files.py).
pytestmark = pytest.mark.slow


def _ansible_playbook() -> str:
    binary = shutil.which("ansible-playbook")
    if binary is None:
        pytest.skip("ansible-playbook not found; install the Debian package 'ansible-core'")
    return binary


@dataclass(frozen=True)
class Run:
    """One ansible-playbook run: its exit code, its recap, each task's outcome and output."""

    returncode: int
    stats: dict[str, int]
    #: task name -> outcomes of its host lines (ok, changed, skipping, failed, fatal)
    outcomes: dict[str, set[str]]
    #: task name -> what the default callback printed under it
    output: dict[str, str]
    stdout: str
    stderr: str

    def message(self, task: str) -> str:
        """The msg a debug task printed."""
        found = re.search(r'"msg": (".*")', self.output[task])
        assert found, self.output[task]
        text: str = json.loads(found.group(1))
        return text


#: "role : task"; a task two plays run (gpuyard_install's) adds up its outcomes.
_TASK = re.compile(r"^TASK \[(?P<name>.*)\] \**$", re.MULTILINE)
_OUTCOME = re.compile(r"^(ok|changed|skipping|failed|fatal): \[localhost\]", re.MULTILINE)
_RECAP = re.compile(r"^localhost\s*:\s*(?P<counts>.*)$", re.MULTILINE)


def parse_run(returncode: int, stdout: str, stderr: str) -> Run:
    """Read ansible-core's default screen output (the json callback is not in core)."""
    recap = stdout.partition("PLAY RECAP")[2]
    found = _RECAP.search(recap)
    assert found, f"no recap for localhost: {stdout[-3000:]} {stderr[-3000:]}"
    stats = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", found["counts"])}
    outcomes: dict[str, set[str]] = {}
    output: dict[str, str] = {}
    marks = list(_TASK.finditer(stdout))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else stdout.index("PLAY RECAP")
        body = stdout[mark.end() : end]
        outcomes.setdefault(mark["name"], set()).update(_OUTCOME.findall(body))
        output[mark["name"]] = output.get(mark["name"], "") + body
    return Run(returncode, stats, outcomes, output, stdout, stderr)


def run_playbook(work: Path, extra_vars: dict[str, Any], groups: tuple[str, ...]) -> Run:
    """Run deploy/ansible/playbook.yml on localhost, a member of ``groups``, over a local
    connection; Ansible's own files (temp dirs, facts) stay under ``work``."""
    host = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    inventory = work / "inventory.ini"
    inventory.write_text("".join(f"[{group}]\n{host}" for group in groups))
    variables = work / "vars.yml"
    variables.write_text(yaml.safe_dump({"ansible_become": False, **extra_vars}))
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "true",
        "ANSIBLE_DISPLAY_OK_HOSTS": "true",
        "ANSIBLE_HOME": str(work / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(work / "ansible-remote-tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    completed = subprocess.run(
        [_ansible_playbook(), "-i", str(inventory), "-e", f"@{variables}", str(PLAYBOOK)],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    return parse_run(completed.returncode, completed.stdout, completed.stderr)


@dataclass(frozen=True)
class Provisioned:
    root: Path
    port: int
    server_port: int
    first: Run
    second: Run
    #: with a new wheel (the same code, other bytes)
    third: Run


def role_vars(root: Path, work: Path, port: int, server_port: int) -> dict[str, Any]:
    """The roles' variables for an install into ``root`` as the current user."""
    return {
        "gpuyard_root": str(root),
        "gpuyard_wheel": str(work / "dist" / "gpuyard-wheel-placeholder.whl"),
        "gpuyard_wheelhouse_archive": str(work / "wheelhouse.tar.gz"),
        # The interpreter the wheelhouse was packed from: the same ABI and markers.
        "gpuyard_python": str(Path(sys._base_executable).resolve()),  # type: ignore[attr-defined]
        "gpuyard_install_os_packages": False,
        # Byte-compiling every dependency is most of pip's time; nothing here needs it.
        "gpuyard_pip_extra_args": ["--no-compile"],
        "gpuyard_create_user": False,
        "gpuyard_user": _current_user(),
        "gpuyard_group": _current_group(),
        "gpuyard_agent_token": TOKEN,
        "gpuyard_agent_port": port,
        "gpuyard_agent_name": AGENT_NAME,
        # No dockerd here: the agent starts all the same and says Docker is unavailable.
        "gpuyard_agent_docker_host": f"unix://{work}/no-docker.sock",
        "gpuyard_server_secret_key": SECRET_KEY,
        "gpuyard_server_admin_email": ADMIN_EMAIL,
        "gpuyard_server_admin_password": ADMIN_PASSWORD,
        "gpuyard_server_port": server_port,
    }


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _current_group() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    """The playbook run twice into one temporary root."""
    _ansible_playbook()
    work = tmp_path_factory.mktemp("provision")
    wheel = build_project_wheel(work / "dist", work / "build")
    make_wheelhouse_archive(work / "wheelhouse.tar.gz", work / "pack")
    root = work / "root"
    port, server_port = free_port(), free_port()
    variables = {**role_vars(root, work, port, server_port), "gpuyard_wheel": str(wheel)}
    first = run_playbook(work, variables, BOTH_GROUPS)
    assert first.returncode == 0, (first.stdout[-6000:], first.stderr[-3000:])
    second = run_playbook(work, variables, BOTH_GROUPS)
    rebuilt = work / "rebuilt" / wheel.name
    rebuilt.parent.mkdir()
    with (
        zipfile.ZipFile(wheel) as source,
        zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_STORED) as copy,
    ):
        for item in source.infolist():
            copy.writestr(item.filename, source.read(item))
    third = run_playbook(work, {**variables, "gpuyard_wheel": str(rebuilt)}, BOTH_GROUPS)
    return Provisioned(root, port, server_port, first, second, third)


@pytest.mark.integration
def test_syntax_check_accepts_the_playbook() -> None:
    checked = subprocess.run(
        [_ansible_playbook(), "--syntax-check", "-i", str(ANSIBLE_DIR / "inventory.example.ini"),
         str(PLAYBOOK)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "playbook: " in checked.stdout
    assert "WARNING" not in checked.stderr, checked.stderr


@pytest.mark.integration
def test_the_first_run_installs_the_agent(provisioned: Provisioned) -> None:
    root, first = provisioned.root, provisioned.first
    assert first.stats["failed"] == 0
    assert first.stats["changed"] > 0
    venv_gpuyard = root / "opt/gpuyard/venv/bin/gpuyard"
    assert venv_gpuyard.is_file()
    # The venv runs the wheel's copy, not this checkout's.
    where = subprocess.run(
        [str(venv_gpuyard.with_name("python")), "-c", "import gpuyard; print(gpuyard.__file__)"],
        capture_output=True, text=True, timeout=60, check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(root / "opt/gpuyard/venv/lib"))
    env_file = root / "etc/gpuyard/agent.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    settings = read_env_file(env_file)
    assert settings["GPUYARD_AGENT_TOKEN"] == TOKEN
    assert settings["GPUYARD_AGENT_PORT"] == str(provisioned.port)
    assert settings["GPUYARD_AGENT_NAME"] == AGENT_NAME
    server_env = root / "etc/gpuyard/gpuyard.env"
    assert server_env.stat().st_mode & 0o777 == 0o600
    server_settings = read_env_file(server_env)
    assert server_settings["GPUYARD_SECRET_KEY"] == SECRET_KEY
    assert server_settings["GPUYARD_PORT"] == str(provisioned.server_port)
    for data_dir in ("var/lib/gpuyard-agent", "var/lib/gpuyard"):
        assert (root / data_dir).stat().st_mode & 0o777 == 0o700
    # The secrets never reach the log of the run.
    for secret in (TOKEN, SECRET_KEY, ADMIN_PASSWORD):
        assert secret not in first.stdout
    # One venv for both: the second play found it installed.
    assert first.outcomes["gpuyard_install : Install gpuyard into the virtual environment"] == {
        "changed",
        "skipping",
    }
    # No systemd here: said so, not started, but enabled for the next boot.
    for role, service in (("gpuyard_agent", "gpuyard-agent"), ("gpuyard_server", "gpuyard-server")):
        assert first.message(f"{role} : Say what was done with the service") == (
            f"gpuyard {__version__}: {service}.service installed and enabled, NOT started: "
            "systemd is not running on this host"
        )
        assert first.outcomes[f"{role} : Enable and start {service}"] == {"skipping"}
        wants = root / f"etc/systemd/system/multi-user.target.wants/{service}.service"
        assert os.readlink(wants) == f"/etc/systemd/system/{service}.service"


@pytest.mark.integration
def test_a_second_run_changes_nothing(provisioned: Provisioned) -> None:
    second = provisioned.second
    assert second.returncode == 0, second.stdout[-6000:]
    assert second.stats["changed"] == 0, [
        name for name, outcomes in second.outcomes.items() if "changed" in outcomes
    ]
    assert second.stats["failed"] == 0
    assert second.outcomes["gpuyard_install : Install gpuyard into the virtual environment"] == {
        "skipping"
    }


@pytest.mark.integration
def test_a_new_wheel_is_installed_and_restarts_both_services(provisioned: Provisioned) -> None:
    third = provisioned.third
    assert third.returncode == 0, third.stdout[-6000:]
    assert third.outcomes["gpuyard_install : Copy the gpuyard wheel"] == {"changed", "ok"}
    assert third.outcomes["gpuyard_install : Install gpuyard into the virtual environment"] == {
        "changed",
        "skipping",
    }
    # Both services' handlers run (and skip the restart only because systemd is not running).
    for handler in (
        "gpuyard_agent : Restart gpuyard-agent",
        "gpuyard_server : Restart gpuyard-server",
    ):
        assert f"RUNNING HANDLER [{handler}]" in third.stdout


@contextmanager
def started_as_unit(unit: Path) -> Iterator[subprocess.Popen[bytes]]:
    """An installed unit's process, started the way systemd would start it."""
    service = {key: value for section, key, value in unit_entries(unit) if section == "Service"}
    env = {"PATH": "/usr/bin:/bin", **read_env_file(Path(service["EnvironmentFile"]))}
    for section, key, value in unit_entries(unit):
        if (section, key) == ("Service", "Environment"):
            name, _, setting = value.partition("=")
            env[name] = setting
    process = subprocess.Popen(
        unit_command(unit), cwd=service["WorkingDirectory"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def wait_for(process: subprocess.Popen[bytes], url: str, timeout_s: float = 60) -> httpx.Response:
    """The first answer from ``url``; fails with the process's stderr if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"it exited: {process.stderr.read().decode()[-3000:]}")
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} within {timeout_s} s")


def installed_unit(provisioned: Provisioned, name: str) -> Path:
    return provisioned.root / "etc/systemd/system" / name


@pytest.mark.integration
def test_the_installed_agent_starts_and_answers(provisioned: Provisioned) -> None:
    base = f"http://127.0.0.1:{provisioned.port}"
    with started_as_unit(installed_unit(provisioned, AGENT_UNIT.name)) as agent:
        health = wait_for(agent, f"{base}/healthz")
        assert health.status_code == 200
        assert health.json() == {
            "status": "ok",
            "version": __version__,
            "agent": AGENT_NAME,
            "docker": "unavailable",
        }
        # The token in the 0600 file is the one it asks for, and it asks.
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer " + "y" * 40})
        assert wrong.status_code == 401
        metrics = httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert metrics.status_code == 200
        assert "gpuyard_host_docker_up 0.0" in metrics.text


@pytest.mark.integration
def test_the_installed_server_starts_and_its_admin_logs_in(provisioned: Provisioned) -> None:
    base = f"http://127.0.0.1:{provisioned.server_port}"
    with started_as_unit(installed_unit(provisioned, SERVER_UNIT.name)) as server:
        assert wait_for(server, f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        assert login.json()["access_token"]
    # Its SQLite database lives in the data directory the role made.
    assert (provisioned.root / "var/lib/gpuyard/gpuyard.db").is_file()


def _normalised(entries: list[tuple[str, str, str]], root: Path) -> list[tuple[str, str, str]]:
    """A unit's entries with the install root taken off its paths, less the account."""
    return [
        (section, key, value.replace(str(root), ""))
        for section, key, value in entries
        if key not in {"User", "Group"}
    ]


@pytest.mark.integration
@pytest.mark.parametrize("deployed", [AGENT_UNIT, SERVER_UNIT], ids=lambda p: p.name)
def test_the_installed_unit_is_the_deploy_unit(provisioned: Provisioned, deployed: Path) -> None:
    installed = installed_unit(provisioned, deployed.name)
    assert _normalised(unit_entries(installed), provisioned.root) == _normalised(
        unit_entries(deployed), provisioned.root
    )
    service = {k: v for s, k, v in unit_entries(installed) if s == "Service"}
    assert service["User"] == _current_user()
    assert installed.stat().st_mode & 0o777 == 0o644


def test_systemd_analyze_verifies_the_installed_units(provisioned: Provisioned) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the comparison with deploy/systemd stands")
    units = [str(installed_unit(provisioned, unit.name)) for unit in (AGENT_UNIT, SERVER_UNIT)]
    result = subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr


#: Refused inputs, each with the group whose role checks it.
REFUSED = [
    ("gpuyard_agents", {"gpuyard_agent_token": "changeme"}),
    ("gpuyard_agents", {"gpuyard_agent_token": "spaces are not " + "x" * 20}),
    ("gpuyard_servers", {"gpuyard_server_secret_key": "$(reboot)" + "k" * 40}),
    ("gpuyard_servers", {"gpuyard_server_admin_password": "short"}),
]


@pytest.mark.integration
@pytest.mark.parametrize(("group", "bad"), REFUSED, ids=lambda v: str(v)[:40])
def test_a_refused_input_writes_nothing(tmp_path: Path, group: str, bad: dict[str, Any]) -> None:
    root = tmp_path / "root"
    wheel = tmp_path / "gpuyard-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not read: the checks come first")
    variables = {**role_vars(root, tmp_path, free_port(), free_port()), **bad}
    refused = run_playbook(tmp_path, {**variables, "gpuyard_wheel": str(wheel)}, (group,))
    assert refused.returncode != 0
    assert refused.stats["failed"] == 1
    role = group.removesuffix("s")  # gpuyard_agents -> gpuyard_agent
    assert refused.outcomes[f"{role} : Check the inputs"] == {"fatal"}
    assert list(refused.outcomes)[-1] == f"{role} : Check the inputs"  # nothing ran after it
    for value in bad.values():
        assert str(value) not in refused.stdout  # no_log hides what was checked
    assert not root.exists()
