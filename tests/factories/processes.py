"""Real `gpuyard serve` processes for multi-process tests (stopped by the caller)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_processes(
    count: int,
    data_dir: Path,
    database_url: str | None,
    env: dict[str, str],
    ports: list[int] | None = None,
) -> Iterator[list[str]]:
    """Start ``count`` servers sharing one database; yield their base URLs. ``ports``:
    where they listen, for settings that must name a server's own URL before it starts
    (free ports by default)."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    logs = []
    try:
        for i in range(count):
            port = ports[i] if ports else free_port()
            args = [
                sys.executable,
                "-m",
                "gpuyard.cli.main",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ]
            if database_url:
                args += ["--database-url", database_url]
            log = open(data_dir.parent / f"serve-{i}.log", "wb")  # noqa: SIM115
            logs.append(log)
            procs.append(subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc, data_dir)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], data_dir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = "\n".join(p.read_text() for p in data_dir.parent.glob("serve-*.log"))
            raise RuntimeError(f"gpuyard serve exited with {proc.returncode}:\n{logs}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after 60 s")
