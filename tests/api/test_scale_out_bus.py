"""Several API processes on one database and one real Redis (services/bus): a change made
through one API reaches another's stream within 0.5 s, and a revocation through one is
refused by the other on the next request.

First two apps in uvicorn in this process (each with its own ServiceContext: its own
caches, feed and bus connection), then two real `gpuyard serve` processes on PostgreSQL +
Redis. Polling is set far longer than the deadlines (the stream's reads, the change watch,
the scheduler's interval), so only the bus can meet them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_context, make_settings
from factories.live import StreamReader, is_workload, served
from factories.processes import serve_processes
from support.redis import RedisServer

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext

pytestmark = pytest.mark.slow

#: Far longer than any deadline below: a poll cannot be what meets them.
SLOW_POLLING = {
    "stream_poll_interval_s": 30.0,
    "change_watch_interval_s": 30.0,
    "scheduler_interval_s": 60.0,
    "caller_cache_s": 60.0,
}
STREAM_DEADLINE_S = 0.5


def login(url: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)


def submit(url: str, token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/api/v1/workloads",
        headers={"Authorization": f"Bearer {token}"},
        json={"image": "busybox", "gpu": 1},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_seen_within(stream: StreamReader, workload_id: str, started: float) -> None:
    stream.wait_for(is_workload(workload_id), timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed < STREAM_DEADLINE_S, f"seen after {elapsed:.3f} s"


@pytest.fixture
def two_apis(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[str, str]]:
    settings = make_settings(tmp_path / "data", None, redis_url=redis_server.url, **SLOW_POLLING)
    contexts: list[ServiceContext] = [make_context(settings), make_context(settings)]
    try:
        with served(create_app(contexts[0])) as one, served(create_app(contexts[1])) as two:
            wait_until(lambda: all(ctx.bus.live for ctx in contexts))
            yield one, two
    finally:
        for ctx in contexts:
            ctx.db.dispose()


def test_a_change_through_one_api_reaches_the_others_stream(two_apis: tuple[str, str]) -> None:
    one, two = two_apis
    token = login(one)
    stream = StreamReader(two, token)
    try:
        for _ in range(3):
            started = time.monotonic()
            workload = submit(one, token)
            assert_seen_within(stream, workload["id"], started)
    finally:
        stream.close()


def test_a_token_revoked_through_one_api_is_refused_by_the_other_next(
    two_apis: tuple[str, str],
) -> None:
    one, two = two_apis
    token = login(one)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{two}/api/v1/workloads", headers=headers).status_code == 200  # cached
    assert httpx.post(f"{one}/api/v1/auth/logout", headers=headers).status_code == 204
    refused = httpx.get(f"{two}/api/v1/workloads", headers=headers)
    assert refused.status_code == 401, refused.text


def test_two_serve_processes_on_postgresql_and_redis(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    ctx = make_context(make_settings(tmp_path / "data", postgres_url))  # migrated, demo fleet
    env = {
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_REDIS_URL": redis_server.url,
        "GPUYARD_LOG_LEVEL": "WARNING",
        **{f"GPUYARD_{key.upper()}": str(value) for key, value in SLOW_POLLING.items()},
    }
    try:
        with serve_processes(2, ctx.settings.data_dir, postgres_url, env) as (one, two):
            token = login(one)
            headers = {"Authorization": f"Bearer {token}"}
            stream = StreamReader(two, token)
            try:
                # Both run loops; the scheduler lease picks one. Whichever it is, the
                # submission's notice wakes it: placed long before its 60 s interval.
                started = time.monotonic()
                workload = submit(one, token)
                assert_seen_within(stream, workload["id"], started)
                stream.wait_for(lambda e: is_workload(workload["id"], "running")(e), timeout=10)
                assert time.monotonic() - started < 10
            finally:
                stream.close()
            assert httpx.get(f"{two}/api/v1/workloads", headers=headers).status_code == 200
            assert httpx.post(f"{one}/api/v1/auth/logout", headers=headers).status_code == 204
            assert httpx.get(f"{two}/api/v1/workloads", headers=headers).status_code == 401
    finally:
        ctx.db.dispose()
