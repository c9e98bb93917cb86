"""Every benchmark scenario runs end to end at a trivial size, so the harness keeps working.

This checks the harness (it runs, prints, writes its JSON and regenerates the docs), never a
figure: benchmarks assert nothing about time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("S1", "S2", "S3", "S5", "S6")


def test_every_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    results, docs = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-postgres",
         "--results", str(results), "--docs", str(docs)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads(results.read_text())
    assert set(data["scenarios"]) == set(SCENARIOS)
    for sid in SCENARIOS:
        entry = data["scenarios"][sid]
        assert entry["figures"], sid
        assert entry["machine"]["cores"] >= 1
        assert entry["git_commit"]
        assert f"== {sid} " in run.stdout
    assert data["scenarios"]["S2"]["figures"]["oversubscriptions"] == 0
    assert data["scenarios"]["S3"]["figures"]["thrash_cycles"] == 0
    assert data["scenarios"]["S6"]["figures"]["lost"] == 0
    text = docs.read_text()
    assert all(f"## {sid} " in text for sid in SCENARIOS)
