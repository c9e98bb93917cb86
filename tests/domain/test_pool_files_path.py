"""A warm container is handed only to a launch that mounts its files where the pool does
(a web image's launch from the catalog asks for its own files_path)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gpuyard.domain.files_paths import DEFAULT_FILES_PATH
from gpuyard.domain.pools import LaunchShape, PoolSpec, launch_matches
from gpuyard.domain.resources import Resources

NOW = datetime(2026, 12, 4, tzinfo=UTC)
REQUEST = Resources.from_api(0.5, 0.5, 0, 0)
POOL = PoolSpec(
    id="p", name="web", image_type="web", image="web:1", server_id=None, cluster_id="c",
    target_size=1, port_min=32000, port_max=32010, container_port=8080, request=REQUEST,
    command=None, env={}, created_at=NOW, updated_at=NOW, files_path="/srv/www",
)  # fmt: skip
LAUNCH = LaunchShape(
    image="web:1", request=REQUEST, command=None, env={}, ports=[8080], gpu_model=None,
    cluster_id=None, replicas=1, gang=False, node_selector={}, duration_s=None,
    files_path="/srv/www",
)  # fmt: skip


@pytest.mark.parametrize(
    ("pool_path", "launch_path", "matches"),
    [
        pytest.param("/srv/www", "/srv/www", True, id="same place"),
        pytest.param("/srv/www", DEFAULT_FILES_PATH, False, id="pool /srv/www, launch default"),
        pytest.param(DEFAULT_FILES_PATH, "/srv/www", False, id="pool default, launch /srv/www"),
        pytest.param(DEFAULT_FILES_PATH, DEFAULT_FILES_PATH, True, id="both default"),
    ],
)
def test_files_path_must_match(pool_path: str, launch_path: str, matches: bool) -> None:
    pool = replace(POOL, files_path=pool_path)
    launch = replace(LAUNCH, files_path=launch_path)
    assert launch_matches(pool, launch, "c") is matches
