"""Real ``gpuyard serve`` processes (uvicorn, API + scheduler loops) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.dbfleet import ADMIN_EMAIL, ADMIN_PASSWORD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(
    count: int, data_dir: Path, database_url: str | None, interval_s: float = 0.05
) -> Iterator[list[str]]:
    """Start ``count`` servers on one database (each runs the scheduler loop); yield URLs."""
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_SCHEDULER_INTERVAL_S": str(interval_s),
        "GPUYARD_LOG_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    with ExitStack() as stack:
        for i in range(count):
            port = free_port()
            args = [sys.executable, "-m", "gpuyard.cli.main", "serve", "--port", str(port),
                    "--data-dir", str(data_dir)]  # fmt: skip
            if database_url:
                args += ["--database-url", database_url]
            log = stack.enter_context((data_dir.parent / f"serve-{i}.log").open("wb"))
            procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for url, proc in zip(urls, procs, strict=True):
                _wait_ready(url, proc, data_dir)
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def token(url: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


def _wait_ready(url: str, proc: subprocess.Popen[bytes], data_dir: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = "\n".join(p.read_text() for p in data_dir.parent.glob("serve-*.log"))
            raise RuntimeError(f"gpuyard serve exited with {proc.returncode}:\n{logs[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after 90 s")
