"""Root conftest: markers, real-server fixtures, and the CI rule for integration tests.

Integration tests run against real servers started from the machine's binaries
(tests/support/). Where a binary is missing they skip with the reason; when CI is "true" or
"1" such a skip fails the run instead, so CI proves every integration test really ran. That
covers tests marked `integration` (tests that take a server fixture are marked
automatically) and any skip caused by a missing server, e.g. via request.getfixturevalue.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Generator, Iterator

import pytest
import structlog
from factories.templates import migrate_then_close
from support.dockerd import DockerServer
from support.local_server import ServerUnavailable, start_or_skip
from support.nginx import NginxServer
from support.postgres import PostgresServer
from support.redis import RedisServer
from support.registry import RegistryServer
from support.sshd import SshServer

MARKERS = {
    "integration": "needs real external binaries (PostgreSQL, Redis, dockerd, Chromium...); "
    "skipped when they are missing, except in CI where that skip fails the run",
    "slow": "takes seconds rather than milliseconds (still runs by default)",
    "postgres": "runs against a real PostgreSQL server",
    "redis": "runs against a real Redis server",
    "docker": "runs against a real dockerd started by the tests",
    "registry": "runs against a real container registry (docker-registry) started by the tests",
    "nginx": "runs against a real nginx (Debian's nginx-light) started by the tests",
    "sshd": "runs against a real OpenSSH server (Debian's openssh-server) started by the tests",
}
# Fixtures that start real servers, and the markers a test using them gets automatically.
SERVER_FIXTURE_MARKERS = {
    "postgres_server": ("integration", "postgres"),
    "redis_server": ("integration", "redis"),
    "dockerd": ("integration", "docker"),
    "registry_server": ("integration", "registry"),
    "nginx_server": ("integration", "nginx"),
    "sshd": ("integration", "sshd"),
}
CI_SKIP_PREFIX = "integration test skipped in CI: "


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for marker in SERVER_FIXTURE_MARKERS.get(fixture, ()):
                item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI, a skipped integration test is a failure that says why it was skipped."""
    report = yield
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        skip = call.excinfo.value if call.excinfo is not None else None
        if item.get_closest_marker("integration") or isinstance(
            getattr(skip, "__cause__", None), ServerUnavailable
        ):
            reason = skip.msg if isinstance(skip, pytest.skip.Exception) else report.longrepr
            report.outcome = "failed"
            report.longrepr = f"{CI_SKIP_PREFIX}{reason}"
    return report


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (database `gpuyard_test` at `.url`)."""
    with start_or_skip(PostgresServer()) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """Name of a database migrated to head once per session, which `postgres_url` copies.
    Nothing stays connected to it: PostgreSQL copies only a database nobody is using."""
    name = "gpuyard_template"
    migrate_then_close(postgres_server.create_database(name))
    return name


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """URL of a fresh database for one test, migrated to head (a copy of the session's
    template: make_context's migration then has nothing to do); dropped afterwards. The
    migrations themselves run from empty on `empty_postgres_url` (tests/store)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name, template=postgres_template)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database (no schema) for one test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the session (`.url` is redis://127.0.0.1:PORT/0)."""
    with start_or_skip(RedisServer()) as server:
        yield server


@pytest.fixture(scope="session")
def dockerd() -> Iterator[DockerServer]:
    """A dockerd for the session (`.url` is its unix:// socket, `.image` a busybox image)."""
    with start_or_skip(DockerServer()) as server:
        yield server


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    """An OpenSSH server for the session on 127.0.0.1 (`.port`, `.user`; `.authorize(key)`
    lets a public key log in; `.change_host_key()` restarts it with a new host key)."""
    with start_or_skip(SshServer()) as server:
        yield server


@pytest.fixture(scope="session")
def registry_server() -> Iterator[RegistryServer]:
    """A container registry for the session (`.address` is 127.0.0.1:PORT, with one
    account: `.username`, `.password`)."""
    with start_or_skip(RegistryServer()) as server:
        yield server


@pytest.fixture
def nginx_server() -> Iterator[NginxServer]:
    """An nginx for one test (it rewrites the config): ``.routes_conf`` is the file its
    http block includes, ``.pid_file`` its master's PID file, ``.port`` its port."""
    with start_or_skip(NginxServer()) as server:
        yield server


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For a test that calls configure_logging (as `gpuyard serve` does): structlog and the
    stdlib loggers as they were, so no later test logs into this test's closed streams."""
    from gpuyard.log import AUDIT_LOGGER

    root = logging.getLogger()
    level = root.level
    yield
    structlog.reset_defaults()
    root.handlers.clear()
    root.setLevel(level)
    logging.getLogger(AUDIT_LOGGER).handlers.clear()
    logging.getLogger(AUDIT_LOGGER).propagate = True
