"""Fixtures for tests that talk to the fake Kubernetes API server (a test double)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kube.fake_apiserver import DEFAULT_TOKEN, FakeApiServer, write_kubeconfig


@pytest.fixture
def fake_apiserver() -> Iterator[FakeApiServer]:
    """A fake kube-apiserver listening on 127.0.0.1 on a free port, stopped afterwards."""
    server = FakeApiServer(token=DEFAULT_TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kubeconfig(fake_apiserver: FakeApiServer, tmp_path: Path) -> Path:
    """A kubeconfig YAML pointing at the fake API server with its bearer token."""
    return write_kubeconfig(tmp_path / "kubeconfig", fake_apiserver.url, fake_apiserver.token)
