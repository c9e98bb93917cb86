"""The layer contracts (pyproject.toml, [tool.importlinter]) hold, and each one fails when
the layer it guards is broken: a contract that cannot fail would guard nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_the_layers_hold() -> None:
    result = _lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("domain/resources.py", "gpuyard.store.base", "domain imports nothing else"),
        ("scheduler/engine.py", "gpuyard.services.context", "the scheduler is pure"),
        ("store/base.py", "gpuyard.services.context", "store imports domain only"),
        ("runtimes/docker.py", "gpuyard.store.database", "runtimes and the agent stay below"),
        ("services/names.py", "gpuyard.agent.models", "services reach the agent only through"),
        ("services/names.py", "gpuyard.api.deps", "nothing imports api or cli"),
        ("api/deps.py", "gpuyard.store.database", "api reaches store, runtimes and agent"),
    ],
    ids=["domain", "scheduler", "store", "runtimes", "services", "nothing imports api", "api"],
)
def test_each_contract_fails_when_its_layer_is_broken(
    tmp_path: Path, module: str, bad_import: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "gpuyard", src / "gpuyard")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (src / "gpuyard" / module).open("a") as broken:
        broken.write(f"\nimport {bad_import}  # noqa: E402, F401\n")
    result = _lint(src, tmp_path)
    assert result.returncode != 0
    broken_lines = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken_lines), result.stdout
