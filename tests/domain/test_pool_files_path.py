"""A warm container is handed only to a launch that mounts its files where the container
does (a web image's launch from the catalog asks for its own files_path)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuyard.domain.files_paths import DEFAULT_FILES_PATH
from gpuyard.domain.pools import LaunchShape, WarmShape, launch_matches
from gpuyard.domain.resources import Resources

REQUEST = Resources.from_api(0.5, 0.5, 0, 0)
WARM = WarmShape(
    image="web:1", request=REQUEST, command=None, env={}, ports=[8080], files_path="/srv/www"
)
LAUNCH = LaunchShape(
    image="web:1", request=REQUEST, command=None, env={}, ports=[8080], gpu_model=None,
    cluster_id=None, replicas=1, gang=False, node_selector={}, duration_s=None,
    files_path="/srv/www",
)  # fmt: skip


@pytest.mark.parametrize(
    ("warm_path", "launch_path", "matches"),
    [
        pytest.param("/srv/www", "/srv/www", True, id="same place"),
        pytest.param("/srv/www", DEFAULT_FILES_PATH, False, id="warm /srv/www, launch default"),
        pytest.param(DEFAULT_FILES_PATH, "/srv/www", False, id="warm default, launch /srv/www"),
        pytest.param(DEFAULT_FILES_PATH, DEFAULT_FILES_PATH, True, id="both default"),
    ],
)
def test_files_path_must_match(warm_path: str, launch_path: str, matches: bool) -> None:
    warm = replace(WARM, files_path=warm_path)
    launch = replace(LAUNCH, files_path=launch_path)
    assert launch_matches(warm, launch, "c") is matches
