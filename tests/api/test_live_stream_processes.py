"""The live stream across real processes: `gpuyard serve --no-loops` streams what a
separate `gpuyard worker` decides, and a SIGTERM ends the open streams at once instead
of holding uvicorn's graceful shutdown up forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD
from factories.live import StreamReader, is_workload
from factories.processes import free_port

pytestmark = pytest.mark.slow


def _login(url: str, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"gpuyard serve exited:\n{log.read_text()}"
        try:
            response = httpx.post(
                f"{url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            return str(response.json()["access_token"])
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("gpuyard serve never answered")


def test_the_workers_decisions_stream_and_sigterm_ends_open_streams(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_LOCAL_DOCKER": "off",
        "GPUYARD_STREAM_KEEPALIVE_S": "0.5",
    }
    port = free_port()
    cli = [sys.executable, "-m", "gpuyard.cli.main"]
    log_path = tmp_path / "processes.log"
    log = open(log_path, "wb")  # noqa: SIM115
    api = subprocess.Popen(
        [*cli, "serve", "--no-loops", "--demo", "--port", str(port), "--data-dir", str(data)],
        env=env,
        stdout=log,
        stderr=log,
    )
    worker = subprocess.Popen(
        [*cli, "worker", "--data-dir", str(data)], env=env, stdout=log, stderr=log
    )
    streams: list[StreamReader] = []
    try:
        url = f"http://127.0.0.1:{port}"
        token = _login(url, api, log_path)
        streams = [StreamReader(url, token) for _ in range(2)]
        created = httpx.post(
            f"{url}/api/v1/workloads",
            headers={"Authorization": f"Bearer {token}"},
            json={"image": "busybox", "gpu": 1},
        ).json()
        # The API process has no loops: only the worker can make it run, and only the
        # database tells the API process that it did.
        running = streams[0].wait_for(is_workload(created["id"], "running"), timeout=30)
        assert running[-1].data["gpu_indices"]
        streams[1].wait_for(is_workload(created["id"], "running"))

        started = time.monotonic()
        api.send_signal(signal.SIGTERM)
        # uvicorn raises the signal again once it has shut down: -SIGTERM is a clean exit.
        assert api.wait(10) in (0, -signal.SIGTERM), log_path.read_text()
        assert time.monotonic() - started < 5, "open streams held the shutdown up"
        for stream in streams:
            assert stream.ended.wait(5)
            assert stream.error is None, stream.error
    finally:
        for stream in streams:
            stream.close()
        for proc in (api, worker):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        log.close()
