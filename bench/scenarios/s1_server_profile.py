"""Where a gpuyard server's time goes under S1's end-to-end load over HTTP.

The server runs *in this process* (the same ``create_app`` and loops ``gpuyard serve`` runs,
under uvicorn on 127.0.0.1) so :class:`~bench.sampler.StackSampler` can see every thread;
the HTTP clients run in a child process so they do not share its interpreter. The report
(per thread role: API request threads, scheduler loop, event loop) is the profile excerpt
that docs/benchmarks.md shows where S1 misses its end-to-end target.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from bench import dbcheck
from bench.dbfleet import bench_settings
from bench.sampler import StackSampler
from bench.serve import free_port, post_workloads, token
from bench.stats import rate
from gpuyard.api.app import create_app
from gpuyard.services.bootstrap import build_context


def post_all(url: str, bodies: list[dict[str, Any]], clients: int) -> float:
    """POST every body from ``clients`` connections (runs in the child process); seconds."""
    return post_workloads([url], {"Authorization": f"Bearer {token(url)}"}, bodies, clients)[0]


def sampled_run(
    data_dir: Path,
    url: str | None,
    bodies: list[dict[str, Any]],
    prefix: str,
    clients: int,
    timeout_s: float,
) -> tuple[dict[str, Any], str]:
    """Serve the database (SQLite in ``data_dir`` when ``url`` is None) in-process, post
    ``bodies``, sample all threads until they all run. Returns (figures, sampler report)."""
    settings = bench_settings(data_dir, url, run_loops=True, scheduler_interval_s=0.05)
    ctx = build_context(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    _wait_started(server)
    count = len(bodies)
    spawn = multiprocessing.get_context("spawn")
    with StackSampler() as sampler, spawn.Pool(1) as pool:
        started = time.perf_counter()
        pending = pool.apply_async(post_all, (base, bodies, clients))
        deadline = time.monotonic() + timeout_s
        running = 0
        while running < count and time.monotonic() < deadline:
            time.sleep(0.1)
            running = dbcheck.count_status(ctx, "running", prefix)
        total = time.perf_counter() - started
        posted = pending.get(timeout=timeout_s)
    server.should_exit = True
    thread.join(30)
    ctx.db.dispose()
    figures = {"workloads": count, "per_s": rate(running, total), "post_per_s": rate(count, posted)}
    return figures, sampler.report()


def _wait_started(server: uvicorn.Server) -> None:
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("in-process uvicorn did not start")
        time.sleep(0.05)
