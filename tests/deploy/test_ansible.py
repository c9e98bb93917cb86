"""deploy/ansible: the playbook and its role gpuyard_agent, really run.

- `ansible-playbook --syntax-check` accepts the playbook with the example inventory.
- The playbook runs against this machine (`ansible_connection=local`) into a temporary root
  (`gpuyard_root`), from a wheel built from this checkout and a wheelhouse archive, with no
  index: the venv, the 0600 token file and the unit are there; systemd is not running in
  the sandbox, so the run says it did not start the service and enables it for the next
  boot instead.
- The agent it installed starts as its unit says (ExecStart, EnvironmentFile, Environment,
  WorkingDirectory) and answers /healthz, and /metrics only with the token it was given.
- The unit it wrote says what deploy/systemd/gpuyard-agent.service says, and
  `systemd-analyze verify` accepts it.
- A second run changes nothing; a weak token is refused before anything is written.
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
from collections.abc import Iterator
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
TOKEN = "provision-test-token-" + "x" * 24
AGENT_NAME = "provision-test"

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


_TASK = re.compile(r"^TASK \[(?:[\w.]+ : )?(?P<name>.*)\] \**$", re.MULTILINE)
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
        outcomes[mark["name"]] = set(_OUTCOME.findall(body))
        output[mark["name"]] = body
    return Run(returncode, stats, outcomes, output, stdout, stderr)


def run_playbook(work: Path, extra_vars: dict[str, Any]) -> Run:
    """Run deploy/ansible/playbook.yml on localhost over a local connection; Ansible's own
    files (temp dirs, facts) stay under ``work``."""
    inventory = work / "inventory.ini"
    inventory.write_text(
        "[gpuyard_agents]\n"
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
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
    first: Run
    second: Run


def role_vars(root: Path, work: Path, port: int, token: str = TOKEN) -> dict[str, Any]:
    """The role's variables for an install into ``root`` as the current user."""
    return {
        "gpuyard_root": str(root),
        "gpuyard_wheel": str(work / "dist" / "gpuyard-wheel-placeholder.whl"),
        "gpuyard_wheelhouse_archive": str(work / "wheelhouse.tar.gz"),
        # The interpreter the wheelhouse was packed from: the same ABI and markers.
        "gpuyard_python": str(Path(sys._base_executable).resolve()),  # type: ignore[attr-defined]
        "gpuyard_install_os_packages": False,
        "gpuyard_create_user": False,
        "gpuyard_user": _current_user(),
        "gpuyard_group": _current_group(),
        "gpuyard_agent_token": token,
        "gpuyard_agent_port": port,
        "gpuyard_agent_name": AGENT_NAME,
        # No dockerd here: the agent starts all the same and says Docker is unavailable.
        "gpuyard_agent_docker_host": f"unix://{work}/no-docker.sock",
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
    port = free_port()
    variables = {**role_vars(root, work, port), "gpuyard_wheel": str(wheel)}
    first = run_playbook(work, variables)
    assert first.returncode == 0, (first.stdout[-6000:], first.stderr[-3000:])
    second = run_playbook(work, variables)
    return Provisioned(root, port, first, second)


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
    assert (root / "var/lib/gpuyard-agent").stat().st_mode & 0o777 == 0o700
    # The token never reaches the log of the run.
    assert TOKEN not in first.stdout
    # No systemd here: said so, not started, but enabled for the next boot.
    said = first.message("Say what was done with the service")
    assert said == (
        f"gpuyard {__version__}: gpuyard-agent.service installed and enabled, NOT started: "
        "systemd is not running on this host"
    )
    assert first.outcomes["Enable and start gpuyard-agent"] == {"skipping"}
    wants = root / "etc/systemd/system/multi-user.target.wants/gpuyard-agent.service"
    assert os.readlink(wants) == "/etc/systemd/system/gpuyard-agent.service"


@pytest.mark.integration
def test_a_second_run_changes_nothing(provisioned: Provisioned) -> None:
    second = provisioned.second
    assert second.returncode == 0, second.stdout[-6000:]
    assert second.stats["changed"] == 0, [
        name for name, outcomes in second.outcomes.items() if "changed" in outcomes
    ]
    assert second.stats["failed"] == 0
    assert second.outcomes["Install gpuyard into the virtual environment"] == {"skipping"}


@pytest.fixture
def started_agent(provisioned: Provisioned) -> Iterator[subprocess.Popen[bytes]]:
    """The installed agent, started the way its unit tells systemd to start it."""
    unit = provisioned.root / "etc/systemd/system/gpuyard-agent.service"
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


@pytest.mark.integration
def test_the_installed_agent_starts_and_answers(
    provisioned: Provisioned, started_agent: subprocess.Popen[bytes]
) -> None:
    base = f"http://127.0.0.1:{provisioned.port}"
    deadline = time.monotonic() + 30
    health: httpx.Response | None = None
    while time.monotonic() < deadline:
        if started_agent.poll() is not None:
            assert started_agent.stderr is not None
            pytest.fail(f"the agent exited: {started_agent.stderr.read().decode()[-3000:]}")
        try:
            health = httpx.get(f"{base}/healthz", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    assert health is not None, "the agent never answered /healthz"
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
    metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert metrics.status_code == 200
    assert "gpuyard_host_docker_up 0.0" in metrics.text


def _normalised(entries: list[tuple[str, str, str]], root: Path) -> list[tuple[str, str, str]]:
    """A unit's entries with the install root taken off its paths, less the account."""
    return [
        (section, key, value.replace(str(root), ""))
        for section, key, value in entries
        if key not in {"User", "Group"}
    ]


@pytest.mark.integration
def test_the_installed_unit_is_the_deploy_unit(provisioned: Provisioned) -> None:
    installed = provisioned.root / "etc/systemd/system/gpuyard-agent.service"
    assert _normalised(unit_entries(installed), provisioned.root) == _normalised(
        unit_entries(AGENT_UNIT), provisioned.root
    )
    service = {k: v for s, k, v in unit_entries(installed) if s == "Service"}
    assert service["User"] == _current_user()
    assert installed.stat().st_mode & 0o777 == 0o644


def test_systemd_analyze_verifies_the_installed_unit(provisioned: Provisioned) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the comparison with deploy/systemd stands")
    installed = provisioned.root / "etc/systemd/system/gpuyard-agent.service"
    result = subprocess.run(
        [analyze, "verify", str(installed)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr


@pytest.mark.integration
def test_a_weak_token_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    wheel = tmp_path / "gpuyard-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not read: the check comes first")
    for token in ("short", "changeme", "a" * 15, "spaces are not " + "x" * 20):
        variables = {**role_vars(root, tmp_path, free_port(), token), "gpuyard_wheel": str(wheel)}
        refused = run_playbook(tmp_path, variables)
        assert refused.returncode != 0
        assert refused.stats["failed"] == 1
        assert refused.outcomes["Check the inputs"] == {"fatal"}
        assert list(refused.outcomes)[-1] == "Check the inputs"  # nothing ran after it
        assert token not in refused.stdout  # no_log hides what was checked
        assert not root.exists()
