"""API tests run against both SQLite and a real PostgreSQL (dstack's matrix)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from argon2 import PasswordHasher
from factories.app import authed_client, make_context, make_settings
from fastapi.testclient import TestClient

from gpuyard.auth import passwords
from gpuyard.services.context import ServiceContext


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the embedded default under --data-dir
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ctx(tmp_path: Path, database_url: str | None) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", database_url))
    yield context
    context.db.dispose()


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with authed_client(ctx) as test_client:
        yield test_client


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its cheapest for API tests: they are about flows, not hash cost, and each
    login or new account would otherwise spend ~0.1 s hashing. (Production keeps
    argon2-cffi's defaults; an old-parameter hash is upgraded at the next login.)"""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with patch.object(passwords, "_hasher", cheap):
        yield
