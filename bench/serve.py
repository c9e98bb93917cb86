"""Real ``gpuyard serve`` processes (uvicorn, API + scheduler loops) on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.dbfleet import ADMIN_EMAIL, ADMIN_PASSWORD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(
    count: int,
    data_dir: Path,
    database_url: str | None,
    interval_s: float = 0.05,
    *,
    worker: bool = False,
) -> Iterator[list[str]]:
    """Start ``count`` servers on one database and yield their URLs. Each runs the
    scheduler loop, or with ``worker`` they serve only the API (``--no-loops``) and one
    ``gpuyard worker`` process runs the loops (README, "Running at scale")."""
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_SCHEDULER_INTERVAL_S": str(interval_s),
        "GPUYARD_LOG_LEVEL": "WARNING",
    }
    database = ["--data-dir", str(data_dir)]
    if database_url:
        database += ["--database-url", database_url]
    gpuyard = [sys.executable, "-m", "gpuyard.cli.main"]
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    with ExitStack() as stack:
        for i in range(count):
            port = free_port()
            args = [*gpuyard, "serve", "--port", str(port), *database]
            if worker:
                args.append("--no-loops")
            log = stack.enter_context((data_dir.parent / f"serve-{i}.log").open("wb"))
            procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for url, proc in zip(urls, procs, strict=True):
                _wait_ready(url, proc, data_dir)
            if worker:  # after the servers: they create the database and the first admin
                log_path = data_dir.parent / "worker.log"
                log = stack.enter_context(log_path.open("wb"))
                proc = subprocess.Popen(
                    [*gpuyard, "worker", *database], env=env, stdout=log, stderr=log
                )
                procs.append(proc)
                _wait_worker(log_path, proc)
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


def _wait_worker(log: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until the worker says its loops run (its start is not part of what is timed)."""
    wait_until(
        lambda: "loops running" in log.read_text(errors="replace"),
        proc,
        "gpuyard worker",
        lambda: log.read_text(),
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], data_dir: Path) -> None:
    def logs() -> str:
        return "\n".join(p.read_text() for p in data_dir.parent.glob("serve-*.log"))[-3000:]

    wait_until(lambda: is_ready(url), proc, f"gpuyard serve at {url}", logs)


def is_ready(url: str) -> bool:
    """Whether the server at ``url`` answers ``GET /readyz`` with 200."""
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    what: str,
    logs: Callable[[], str],
    timeout_s: float = 90,
) -> None:
    """Poll ``ready`` until it holds; fail with the logs if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{logs()}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s:g} s")


def post_workloads(
    urls: list[str], headers: dict[str, str], bodies: list[dict[str, Any]], threads: int
) -> tuple[float, list[float]]:
    """POST every body to ``/api/v1/workloads`` from ``threads`` client threads, each bound
    to one of ``urls`` (round robin) with one keep-alive connection; the seconds it took
    and each request's latency. Any answer but 201 stops the run."""
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()
    counter = itertools.count()

    def submit(body: dict[str, Any]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            with lock:
                url = urls[next(counter) % len(urls)]
            client = local.client = httpx.Client(base_url=url, headers=headers, timeout=120)
        started = time.perf_counter()
        response = client.post("/api/v1/workloads", json=body)
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"POST /workloads -> {response.status_code}: {response.text}")
        with lock:
            latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(submit, bodies))
    return time.perf_counter() - started, latencies
