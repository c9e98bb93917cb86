"""The deployment files are valid and say what README "Running at scale" says they do.

- deploy/compose.yaml: `docker-compose config -q` (Debian's docker-compose) accepts it with
  the example env files filled in; skipped where docker-compose is missing, which fails the
  run in CI (tests/conftest.py), like every other integration test.
- deploy/systemd units: every key is one systemd knows in its section, and where
  `systemd-analyze` is installed, `systemd-analyze verify` of an instance of each reports
  nothing; they run the compose file's commands, hardened.
- deploy/Dockerfile: known instructions, an unprivileged user, the gpuyard command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest
import yaml

from gpuyard.runtimes.agent_install import SERVICE_USER, InstallPlan, unit_text

from .files import (
    AGENT_UNIT,
    API_UNIT,
    COMPOSE_FILE,
    DEPLOY,
    ENV_EXAMPLES,
    SERVER_UNIT,
    WORKER_UNIT,
    compose,
    read_env_file,
    service_command,
    unit_command,
    unit_entries,
)

#: Names that carry secrets: never inline in the compose file or a unit.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|DATABASE_URL|REDIS_URL|TOKEN", re.IGNORECASE)


@pytest.fixture
def compose_dir(tmp_path: Path) -> Path:
    """A copy of deploy/ (inside a build context) with the example env files filled in."""
    context = tmp_path / "context"
    shutil.copytree(DEPLOY, context / "deploy")
    for name, example in ENV_EXAMPLES.items():
        env = read_env_file(example)
        filled = {k: v or f"test-value-for-{k.lower()}" for k, v in env.items()}
        (context / "deploy" / name).write_text("".join(f"{k}={v}\n" for k, v in filled.items()))
    return context / "deploy"


@pytest.mark.integration
def test_docker_compose_accepts_the_compose_file(compose_dir: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not found; install the Debian package 'docker-compose'")
    args = [
        binary,
        "--project-directory",
        str(compose_dir),
        "-f",
        str(compose_dir / "compose.yaml"),
    ]
    checked = subprocess.run(
        [*args, "config", "-q"], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "", checked.stderr  # no warnings either
    resolved = subprocess.run(
        [*args, "--profile", "proxy", "config"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    services = yaml.safe_load(resolved.stdout)["services"]
    assert {"api", "worker", "postgres", "redis", "nginx"} <= set(services)
    # The env file's settings reach both gpuyard services.
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["GPUYARD_SECRET_KEY"] == "test-value-for-gpuyard_secret_key"
        assert env["GPUYARD_REDIS_URL"].startswith("redis://redis:")


def test_the_compose_file_runs_api_replicas_and_workers_on_postgres_and_redis() -> None:
    services = compose()["services"]
    api, worker = services["api"], services["worker"]
    assert service_command("api")[1:3] == ["serve", "--no-loops"]
    assert service_command("worker")[1:] == ["worker"]
    assert api["deploy"]["replicas"] >= 2
    assert worker["deploy"]["replicas"] == 2  # one active, one standby for the leases
    for spec in (api, worker):
        assert spec["env_file"] == ["gpuyard.env"]
        assert spec["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["nginx"]["profiles"] == ["proxy"]  # optional: only with --profile proxy
    for name, spec in services.items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_no_secret_is_inline_in_the_compose_file() -> None:
    for name, spec in compose()["services"].items():
        for key in spec.get("environment") or {}:
            assert not SECRET_NAME.search(key), f"{name}: {key} belongs in an env file"
    gpuyard_env = read_env_file(ENV_EXAMPLES["gpuyard.env"])
    for key in ("GPUYARD_DATABASE_URL", "GPUYARD_REDIS_URL", "GPUYARD_SECRET_KEY"):
        assert key in gpuyard_env
    assert gpuyard_env["GPUYARD_SECRET_KEY"] == ""  # no shared secret ships with the example
    ignored = (DEPLOY / ".gitignore").read_text().splitlines()
    assert "*.env" in ignored  # the filled-in copies are never committed


#: The keys systemd 252 knows, in the sections these units use (systemd.unit(5),
#: systemd.service(5), systemd.exec(5), systemd.kill(5), systemd.resource-control(5)): the
#: check where systemd-analyze is not installed. Not every key; every key worth writing here.
KNOWN_KEYS = {
    "Unit": {
        "Description", "Documentation", "Wants", "Requires", "Requisite", "BindsTo", "PartOf",
        "Upholds", "Conflicts", "Before", "After", "OnFailure", "OnSuccess",
        "StartLimitIntervalSec", "StartLimitBurst", "ConditionPathExists", "AssertPathExists",
    },
    "Service": {
        "Type", "ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop",
        "ExecStopPost", "Restart", "RestartSec", "TimeoutStartSec", "TimeoutStopSec",
        "TimeoutSec", "RuntimeMaxSec", "WatchdogSec", "KillMode", "KillSignal",
        "SendSIGKILL", "User", "Group", "DynamicUser", "SupplementaryGroups",
        "WorkingDirectory", "Environment", "EnvironmentFile", "PassEnvironment",
        "UnsetEnvironment", "StandardOutput", "StandardError", "SyslogIdentifier",
        "StateDirectory", "StateDirectoryMode", "RuntimeDirectory", "RuntimeDirectoryMode",
        "CacheDirectory", "LogsDirectory", "ConfigurationDirectory", "LoadCredential",
        "SetCredential", "UMask", "LimitNOFILE", "MemoryMax", "CPUQuota", "TasksMax",
        "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
        "PrivateNetwork", "PrivateUsers", "ProtectKernelTunables", "ProtectKernelModules",
        "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
        "ProtectProc", "ProcSubset", "RestrictAddressFamilies", "RestrictNamespaces",
        "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute",
        "RemoveIPC", "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
        "CapabilityBoundingSet", "AmbientCapabilities", "ReadWritePaths", "ReadOnlyPaths",
        "InaccessiblePaths", "IPAddressAllow", "IPAddressDeny", "DevicePolicy",
    },
    "Install": {"WantedBy", "RequiredBy", "Alias", "Also", "DefaultInstance"},
}  # fmt: skip
#: What every unit must set, and to what.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
}
UNITS = (API_UNIT, WORKER_UNIT, SERVER_UNIT, AGENT_UNIT)
#: Where a unit departs from HARDENING, and why: the agent reads the GPUs through NVML, which
#: opens /dev/nvidia* (PrivateDevices would hide them), signals the processes of abandoned
#: execs (CAP_KILL) and manages workspace files the containers' users created.
AGENT_CAPABILITIES = "CAP_KILL CAP_DAC_OVERRIDE CAP_FOWNER"
HARDENING_EXCEPTIONS = {
    AGENT_UNIT.name: {
        "PrivateDevices": "no",
        "CapabilityBoundingSet": AGENT_CAPABILITIES,
        "AmbientCapabilities": AGENT_CAPABILITIES,
    }
}
#: The file each unit's settings and secrets come from (mode 0600, owned by root).
ENVIRONMENT_FILES = {
    API_UNIT.name: "/etc/gpuyard/gpuyard.env",
    WORKER_UNIT.name: "/etc/gpuyard/gpuyard.env",
    SERVER_UNIT.name: "/etc/gpuyard/gpuyard.env",
    AGENT_UNIT.name: "/etc/gpuyard/agent.env",
}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_unit_key_is_known_to_systemd(unit: Path) -> None:
    entries = unit_entries(unit)
    assert {section for section, _, _ in entries} == {"Unit", "Service", "Install"}
    for section, key, _ in entries:
        assert key in KNOWN_KEYS[section], f"{unit.name}: [{section}] {key} is not a known key"


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_are_hardened_and_keep_secrets_in_a_file(unit: Path) -> None:
    service = {k: v for s, k, v in unit_entries(unit) if s == "Service"}
    expected = {**HARDENING, **HARDENING_EXCEPTIONS.get(unit.name, {})}
    for key, value in expected.items():
        assert service.get(key) == value, f"{unit.name}: {key}={service.get(key)!r}"
    assert service["User"] not in {"root", "0"}
    assert service["EnvironmentFile"] == ENVIRONMENT_FILES[unit.name]
    for _section, key, value in unit_entries(unit):
        if key == "Environment":
            assert not SECRET_NAME.search(value.partition("=")[0]), f"{unit.name}: {value}"


def test_the_units_run_the_compose_commands() -> None:
    for unit, service in ((API_UNIT, "api"), (WORKER_UNIT, "worker")):
        command = unit_command(unit)
        assert Path(command[0]).is_absolute()
        assert Path(command[0]).name == "gpuyard"
        assert command[1:] == service_command(service)[1:], unit.name
    # The API instance's name is its port: gpuyard-api@8081 listens on 8081.
    assert ("Service", "Environment", "GPUYARD_PORT=%i") in unit_entries(API_UNIT)
    # The single-host server runs the API and the loops in one process; the agent, the agent.
    assert unit_command(SERVER_UNIT)[1:] == ["serve"]
    assert unit_command(AGENT_UNIT)[1:] == ["agent"]
    for unit in (SERVER_UNIT, AGENT_UNIT):
        assert unit_command(unit)[0] == unit_command(API_UNIT)[0]  # one venv for all


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the key check above stands in for it")
    # verify also checks that ExecStart's program exists: here it is this checkout's.
    installed = Path(sys.executable).with_name("gpuyard")
    program = installed if installed.exists() else Path(sys.executable)
    instances = []
    for unit, instance in ((API_UNIT, "8081"), (WORKER_UNIT, "1"), (SERVER_UNIT, ""),
                           (AGENT_UNIT, "")):  # fmt: skip
        text = unit.read_text().replace(unit_command(unit)[0], str(program))
        copy = tmp_path / unit.name.replace("@.", f"@{instance}.")
        (tmp_path / unit.name).write_text(text)
        instances.append(str(copy))
    result = subprocess.run(
        [analyze, "verify", *instances], capture_output=True, text=True, timeout=60, check=False
    )
    # Unknown keys, bad values and missing programs are all reported on stderr.
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr


DOCKERFILE = DEPLOY / "Dockerfile"
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def test_the_dockerfile_is_well_formed_and_unprivileged() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    instructions: list[tuple[str, str]] = []
    continued = False
    for line in lines:
        stripped = line.strip()
        if not continued and stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            assert word in INSTRUCTIONS, f"Dockerfile: unknown instruction {word!r}"
            instructions.append((word, rest))
        continued = stripped.endswith("\\")
    assert instructions[0][0] in {"FROM", "ARG"}
    final = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users
    assert users[-1] not in {"root", "0"}
    cmd = [rest for word, rest in final if word == "CMD"]
    assert cmd
    assert cmd[-1].startswith('["gpuyard"')
    # What the compose file builds is this file.
    assert compose()["x-gpuyard"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert COMPOSE_FILE.parent == DOCKERFILE.parent


INSTALLER_PLAN = InstallPlan(
    prefix=PurePosixPath("/"),
    python="python3",
    token="t" * 32,
    agent_name="gpu-1",
    bind="0.0.0.0",
    port=8090,
    version="1",
    wheelhouse=None,
)


def test_the_installer_writes_the_shipped_agent_unit(tmp_path: Path) -> None:
    # One unit for every way in: `gpuyard agent install` at / writes exactly the file
    # deploy/systemd links to (and the Ansible role renders), the gpuyard user included.
    assert AGENT_UNIT.is_symlink()
    assert unit_text(INSTALLER_PLAN) == AGENT_UNIT.read_text()
    entries = unit_entries(AGENT_UNIT)
    service = {k: v for s, k, v in entries if s == "Service"}
    assert service["User"] == SERVICE_USER
    assert service["EnvironmentFile"] == "/etc/gpuyard/agent.env"  # the token stays in it
    assert service["ExecStart"] == "/opt/gpuyard/venv/bin/gpuyard agent"
    # Under a prefix (a test, a sandbox) every path the unit names moves with it.
    prefixed = unit_text(replace(INSTALLER_PLAN, prefix=PurePosixPath(tmp_path)))
    assert f"{tmp_path}/opt/gpuyard/venv/bin/gpuyard agent" in prefixed
    assert f"EnvironmentFile={tmp_path}/etc/gpuyard/agent.env" in prefixed
    assert "=/opt/gpuyard" not in prefixed


def test_systemd_analyze_verifies_the_unit_the_installer_writes(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the key check above stands in for it")
    installed = Path(sys.executable).with_name("gpuyard")
    program = installed if installed.exists() else Path(sys.executable)
    env_file = tmp_path / "agent.env"
    env_file.write_text("GPUYARD_AGENT_TOKEN=x\n")
    text = (
        unit_text(INSTALLER_PLAN)
        .replace("/opt/gpuyard/venv/bin/gpuyard", str(program))
        .replace("/etc/gpuyard/agent.env", str(env_file))
        .replace("/var/lib/gpuyard-agent", str(tmp_path))
    )
    copy = tmp_path / "gpuyard-agent.service"
    copy.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
