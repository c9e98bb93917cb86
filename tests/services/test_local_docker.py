"""`gpuyard serve` offers the local Docker only where one answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuyard.services.fleet.local_docker import local_docker_enabled
from gpuyard.settings import Settings


def test_auto_without_a_socket_is_off(tmp_path: Path) -> None:
    assert not local_docker_enabled(Settings(docker_socket=tmp_path / "none.sock"))


def test_on_without_a_socket_says_so(tmp_path: Path) -> None:
    settings = Settings(local_docker="on", docker_socket=tmp_path / "none.sock")
    with pytest.raises(RuntimeError, match=r"does not answer"):
        local_docker_enabled(settings)


def test_off_never_looks(tmp_path: Path) -> None:
    assert not local_docker_enabled(Settings(local_docker="off"))
