"""The wheel carries the built dashboard: setuptools' build_py (what bdist_wheel packs)
must copy src/gpuyard/web_dist, so an installed gpuyard serves it at /."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from web.build import DIST, REPO

pytestmark = pytest.mark.slow


def test_the_package_data_includes_the_built_dashboard(
    dashboard_dist: Path, tmp_path: Path
) -> None:
    built = sorted(p.relative_to(DIST) for p in DIST.rglob("*") if p.is_file())
    assert Path("index.html") in built
    assert any(p.parts[0] == "assets" and p.suffix == ".js" for p in built)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    packaged = tmp_path / "gpuyard" / "web_dist"
    assert sorted(p.relative_to(packaged) for p in packaged.rglob("*") if p.is_file()) == built
