"""Every benchmark scenario runs end to end at a trivial size, so the harness keeps working.

This checks the harness (it runs, prints, writes its JSON and regenerates the docs), never a
figure: benchmarks assert nothing about time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "S6", "S9")
#: S7 drives the built dashboard in Chromium: an integration test of its own.
BROWSER_SCENARIOS = ("S7",)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _run_bench(tmp_path: Path, scenarios: tuple[str, ...]) -> tuple[dict[str, Any], str, str]:
    """Run ``scenarios`` at smoke size; the JSON written, the docs and the console output."""
    results, docs = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-postgres", "--only", ",".join(scenarios),
         "--results", str(results), "--docs", str(docs)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads(results.read_text())
    assert set(data["scenarios"]) == set(scenarios)
    for sid in scenarios:
        entry = data["scenarios"][sid]
        assert entry["figures"], sid
        assert entry["machine"]["cores"] >= 1
        assert entry["git_commit"]
        assert f"== {sid} " in run.stdout
    text = docs.read_text()
    assert all(f"## {sid} " in text for sid in scenarios)
    return data, text, run.stdout


def test_every_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    data, _, _ = _run_bench(tmp_path, SCENARIOS)
    assert data["scenarios"]["S2"]["figures"]["oversubscriptions"] == 0
    assert data["scenarios"]["S3"]["figures"]["thrash_cycles"] == 0
    assert data["scenarios"]["S6"]["figures"]["lost"] == 0
    # The model-constrained traces ran in both orders (the figure itself is not asserted).
    s5 = data["scenarios"]["S5"]["figures"]
    assert "constrained_creation_min_fewer_vs_best_fit_pct" in s5
    assert "constrained_shuffled_min_fewer_vs_best_fit_pct" in s5
    # The Kueue replica admits every workload it creates, and its makespan names the ratio.
    s9 = data["scenarios"]["S9"]["figures"]
    assert s9["admitted"] == s9["workloads"] > 0
    assert s9["ratio_vs_kueue"] == pytest.approx(s9["wall_to_last_finish_s"] / 351.1164)


@pytest.mark.integration
def test_the_dashboard_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    from web.build import NodeMissing, ensure_built

    if not any(Path(path).exists() for path in CHROMIUM_CANDIDATES):
        pytest.skip("Chromium is not installed (Debian package chromium)")
    try:
        ensure_built()
    except NodeMissing as exc:
        pytest.skip(f"cannot build the dashboard: {exc}")
    data, _, _ = _run_bench(tmp_path, BROWSER_SCENARIOS)
    figures = data["scenarios"]["S7"]["figures"]
    # The smoke database (bench/scenarios/s7_dashboard.py): 20 servers, 60 workloads, 6 of
    # them the admin's; each page's table holds them all.
    loaded = {page: figures[f"render {page}"]["rows_loaded"] for page in
              ("Servers", "All workloads", "My workloads")}  # fmt: skip
    assert loaded == {"Servers": 20, "All workloads": 60, "My workloads": 6}
    assert all(figures[f"render {page}"]["painted_median_ms"] > 0 for page in loaded)
    assert figures["live_lost"] == 0
    for page in ("All workloads", "My workloads"):
        assert len(figures[f"live {page}"]["latencies_ms"]) == 2


@pytest.mark.integration
@pytest.mark.docker
def test_the_warm_pool_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    """S8 starts its own dockerd (the test suite's harness) and one real agent."""
    if shutil.which("dockerd") is None and not Path("/usr/sbin/dockerd").exists():
        pytest.skip("dockerd is not installed (Debian package docker.io)")
    data, _, _ = _run_bench(tmp_path, ("S8",))
    figures = data["scenarios"]["S8"]["figures"]
    assert figures["pool_launches"] == 3
    assert figures["cold_launches"] == 3
    assert figures["pool_p50_s"] > 0


def test_a_partial_run_leaves_the_docs_page_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The results file is not in git: a run of some scenarios in a fresh checkout writes
    its results but does not render the docs page without the others' sections."""
    import bench.__main__ as cli

    page = tmp_path / "benchmarks.md"
    page.write_text("the page as committed\n")
    monkeypatch.setattr(cli, "DOCS", page)
    results = tmp_path / "latest.json"
    assert cli.main(["--smoke", "--no-postgres", "--only", "S3", "--results", str(results)]) == 0
    assert page.read_text() == "the page as committed\n"
    assert set(json.loads(results.read_text())["scenarios"]) == {"S3"}
