"""Real ``gpuyard serve`` processes (uvicorn, API + scheduler loops) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
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
    workers: int = 0,
    redis_url: str | None = None,
) -> Iterator[list[str]]:
    """Start ``count`` servers on one database and yield their URLs. Each runs the
    scheduler loop, or with ``workers`` they serve only the API (``--no-loops``) and that
    many ``gpuyard worker`` processes run the loops (README, "Running at scale"; with
    several, the leases pick which ticks each loop). With ``redis_url`` every process is on
    the Redis bus."""
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_SCHEDULER_INTERVAL_S": str(interval_s),
        "GPUYARD_LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env["GPUYARD_REDIS_URL"] = redis_url
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
            if workers:
                args.append("--no-loops")
            log = stack.enter_context((data_dir.parent / f"serve-{i}.log").open("wb"))
            procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for url, proc in zip(urls, procs, strict=True):
                _wait_ready(url, proc, data_dir)
            for i in range(workers):  # after the servers: they make the first admin
                log_path = data_dir.parent / f"worker-{i}.log"
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
    urls: list[str],
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    clients: int,
    *,
    ready: Callable[[], object] | None = None,
) -> tuple[float, list[float]]:
    """POST every body to ``/api/v1/workloads`` from ``clients`` concurrent clients, each
    with one keep-alive connection to one of ``urls`` (round robin); the seconds it took and
    each request's latency. Any answer but 201 stops the run.

    The clients are aiohttp coroutines on one event loop, not threads: a thread per client
    with httpx cost the client ~0.6 ms of CPU per request and held the GIL between them,
    so on 2 cores the client, not the server, set the pace (a do-nothing FastAPI endpoint
    served ~1,150 POST/s to 16 httpx threads and ~2,800/s to 16 aiohttp clients). Each
    client connects before the clock starts; then ``ready`` (if given) is called, and may
    block until other client processes are ready too."""
    return asyncio.run(_post_all(urls, headers, bodies, clients, ready))


async def _post_all(
    urls: list[str],
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    clients: int,
    ready: Callable[[], object] | None,
) -> tuple[float, list[float]]:
    payloads = iter([json.dumps(body).encode() for body in bodies])
    headers = {**headers, "Content-Type": "application/json"}
    latencies: list[float] = []
    sessions = [
        aiohttp.ClientSession(
            base_url=urls[i % len(urls)],
            headers=headers,
            connector=aiohttp.TCPConnector(limit=1),
            timeout=aiohttp.ClientTimeout(total=120),
        )
        for i in range(clients)
    ]

    async def connect(session: aiohttp.ClientSession) -> None:
        # The server closes a keep-alive connection idle for 5 s (uvicorn's default); a
        # wait at ``ready`` can last that long on a loaded machine, and a POST written into
        # a connection the server is closing fails ("Can not write request body"). So a
        # connection is (re)opened here, retried if it was being closed, untimed.
        for attempt in range(3):
            try:
                async with session.get("/readyz") as response:
                    await response.read()
                return
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                if attempt == 2:
                    raise

    async def submit_all(session: aiohttp.ClientSession) -> None:
        for payload in payloads:
            started = time.perf_counter()
            async with session.post("/api/v1/workloads", data=payload) as response:
                text = await response.text()
                if response.status != 201:
                    raise RuntimeError(f"POST /workloads -> {response.status}: {text}")
            latencies.append(time.perf_counter() - started)

    async with AsyncExitStack() as stack:
        for session in sessions:
            await stack.enter_async_context(session)
        await asyncio.gather(*(connect(session) for session in sessions))
        if ready is not None:
            ready()
            await asyncio.gather(*(connect(session) for session in sessions))
        started = time.perf_counter()
        await asyncio.gather(*(submit_all(session) for session in sessions))
        return time.perf_counter() - started, latencies
