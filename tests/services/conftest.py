"""Fixtures shared by the service tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import make_context, make_settings
from factories.clock import ManualClock

from gpuyard.services.context import ServiceContext


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def clock_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """A context on SQLite and on PostgreSQL whose clock the test moves by hand."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    ctx = make_context(make_settings(tmp_path / "data", url))
    ctx.clock = ManualClock()
    yield ctx
    ctx.db.dispose()
