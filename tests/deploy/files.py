"""The deployment files (deploy/): what they run, read from them, never retyped.

The multi-process test starts the commands the compose file gives its `api` and `worker`
services, with the settings the compose file and the example env file give them; the
systemd units must run the same commands (tests/deploy/test_deploy_files.py).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
UNITS_DIR = DEPLOY / "systemd"
API_UNIT = UNITS_DIR / "gpuyard-api@.service"
WORKER_UNIT = UNITS_DIR / "gpuyard-worker@.service"
#: One process with the API and the loops, for a single host.
SERVER_UNIT = UNITS_DIR / "gpuyard-server.service"
#: The agent on each Docker host (the Ansible role deploy/ansible installs it).
AGENT_UNIT = UNITS_DIR / "gpuyard-agent.service"
#: The example env files; each is copied to the name without `.example` and filled in.
ENV_EXAMPLES = {"gpuyard.env": DEPLOY / "gpuyard.env.example",
                "postgres.env": DEPLOY / "postgres.env.example"}  # fmt: skip
#: Where the container's address and port are set: a process on the test's machine listens
#: on 127.0.0.1 and a free port instead.
CONTAINER_ONLY = ("GPUYARD_HOST", "GPUYARD_PORT")


def compose() -> dict[str, Any]:
    """deploy/compose.yaml as data."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def service_command(service: str) -> list[str]:
    """The command (exec form) of one compose service."""
    command = compose()["services"][service]["command"]
    assert isinstance(command, list), f"{service}: the command must be in exec form"
    return [str(part) for part in command]


def service_environment(service: str) -> dict[str, str]:
    """What a compose service's process gets in its environment from the example env file
    and the service's own ``environment`` (less the container's address and port)."""
    spec = compose()["services"][service]
    env: dict[str, str] = {}
    for name in spec.get("env_file", []):
        env.update(read_env_file(ENV_EXAMPLES[name]))
    env.update({str(k): str(v) for k, v in (spec.get("environment") or {}).items()})
    return {k: v for k, v in env.items() if k not in CONTAINER_ONLY}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (no quoting, as docker and systemd both read them); # comments."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=value: {line!r}"
        env[key.strip()] = value.strip()
    return env


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment in a systemd unit file."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path.name}:{number}: no continuation lines"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not an assignment"
        assert section, f"{path.name}:{number}: an assignment outside any section"
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_command(path: Path) -> list[str]:
    """The ExecStart of a unit, split as systemd splits it."""
    starts = [v for s, k, v in unit_entries(path) if (s, k) == ("Service", "ExecStart")]
    assert len(starts) == 1, f"{path.name}: one ExecStart"
    return shlex.split(starts[0])


def process_argv(command: list[str]) -> list[str]:
    """A deployment command run from this checkout: the ``gpuyard`` console script is
    this interpreter running gpuyard's CLI module; every argument stays as the file says."""
    program, *args = command
    assert Path(program).name == "gpuyard", f"not a gpuyard command: {command}"
    return [sys.executable, "-m", "gpuyard.cli.main", *args]
