"""`gpuyard agent` as an operator runs it: a real process over the real dockerd."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.dockerd import DockerServer
from support.local_server import free_port

from .builders import make_token


@pytest.fixture
def agent_process(dockerd: DockerServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    token, port = make_token(), free_port()
    command = [
        sys.executable, "-m", "gpuyard.cli.main", "agent",
        "--port", str(port),
        "--name", "cli-host",
        "--docker-host", dockerd.url,
        "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    env = {**os.environ, "GPUYARD_AGENT_TOKEN": token}  # not on the command line
    log = (tmp_path / "agent.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "agent.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "agent did not answer in 30 s"
                time.sleep(0.05)
        yield url, token
    finally:
        process.terminate()
        process.wait(15)
        log.close()


@pytest.mark.slow
def test_agent_command_serves_inventory_with_its_token(agent_process: tuple[str, str]) -> None:
    url, token = agent_process

    health = httpx.get(f"{url}/healthz").json()
    assert (health["agent"], health["docker"]) == ("cli-host", "ok")
    assert httpx.get(f"{url}/v1/inventory").status_code == 401
    inventory = httpx.get(
        f"{url}/v1/inventory", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    assert inventory["agent_name"] == "cli-host"
    assert inventory["cpu_count"] == os.cpu_count()
    assert inventory["docker"]["storage_driver"]
    assert inventory["publish_address"] == "127.0.0.1"
    assert inventory["gpu_source"] in {"nvml", "nvidia-smi", "none"}


def test_agent_command_refuses_a_weak_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpuyard.cli.main", "agent", "--token", "T"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("GPUYARD_")},
    )
    assert result.returncode == 2
    assert "at least 16 characters" in result.stderr
