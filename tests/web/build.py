"""Build the dashboard for the tests when its build is missing or older than its sources
(the same rule as `make web`: npm ci when the lockfile changed, then vite build)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
DIST = REPO / "src" / "gpuyard" / "web_dist"
INDEX = DIST / "index.html"
MODULES_STAMP = WEB / "node_modules" / ".installed"
AXE_SCRIPT = WEB / "node_modules" / "axe-core" / "axe.min.js"
_CONFIG_FILES = (
    "index.html",
    "package.json",
    "vite.config.ts",
    "tsconfig.json",
    "postcss.config.cjs",
)


class NodeMissing(RuntimeError):
    """npm is not installed: the dashboard cannot be built here."""


def _newest_source() -> float:
    files = [WEB / name for name in _CONFIG_FILES]
    for folder in (WEB / "src", WEB / "public"):
        files += [p for p in folder.rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


def _older(target: Path, than: float) -> bool:
    return not target.exists() or target.stat().st_mtime < than


def ensure_built() -> Path:
    """The build folder, built first if needed. Raises NodeMissing without npm."""
    npm = shutil.which("npm")
    lockfile = (WEB / "package-lock.json").stat().st_mtime
    needs_install = _older(MODULES_STAMP, lockfile) or not AXE_SCRIPT.exists()
    needs_build = needs_install or _older(INDEX, _newest_source())
    if not needs_build:
        return DIST
    if npm is None:
        raise NodeMissing("npm is not installed (Debian packages nodejs and npm)")
    if needs_install:
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
        MODULES_STAMP.touch()
    _run([npm, "run", "--silent", "build"])
    INDEX.touch()
    return DIST


def _run(args: list[str]) -> None:
    result = subprocess.run(args, cwd=WEB, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
