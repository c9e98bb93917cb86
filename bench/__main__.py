"""``python -m bench [--full] [--only S1,S3]``: run the scenarios, print, record, document.

Prints one block per scenario (its setup, tables with the baselines measured in the same
run, and the verdict on each target), writes ``bench/results/latest.json`` (per scenario:
figures, baseline figures, verdicts, machine, timestamp, git commit; scenarios not run this
time are kept from the previous file, and the last ``--full`` run of each is kept as well)
and regenerates ``docs/benchmarks.md`` from it.
Benchmarks never fail on a figure; the exit status is non-zero only if a scenario crashes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import docs, machine, render
from bench.pg import postgres
from bench.result import ScenarioResult
from bench.scenarios import NEEDS_POSTGRES, SCENARIOS
from bench.targets import check
from gpuyard.log import AUDIT_LOGGER, configure_logging

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
DOCS = ROOT / "docs" / "benchmarks.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the sizes issue 8 names (slow)")
    size.add_argument("--smoke", action="store_true", help="trivial sizes (harness check)")
    parser.add_argument("--only", default="", help="comma-separated scenario ids, e.g. S1,S5")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to write")
    parser.add_argument("--docs", type=Path, default=DOCS, help="Markdown file to regenerate")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL rows")
    args = parser.parse_args(argv)
    mode = "full" if args.full else "smoke" if args.smoke else "quick"
    wanted = [s.strip().upper() for s in args.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    _quiet_logs()
    box = machine.describe()
    print(f"gpuyard benchmarks ({mode} mode) on {machine.one_line(box)}")
    print(f"git {box['git_commit']}")
    if mode == "quick":
        print("Quick mode: sizes are scaled down where noted; `make bench-full` runs the sizes "
              "issue 8 names.")  # fmt: skip
    results = _load(args.results)
    failed = False
    use_pg = not args.no_postgres and bool(NEEDS_POSTGRES.intersection(wanted))
    with postgres() if use_pg else nullcontext((None, "disabled (--no-postgres)")) as (pg, why):
        if use_pg and pg is None:
            print(f"PostgreSQL unavailable, its rows are skipped: {why}")
        for scenario in wanted:
            started = time.perf_counter()
            module = importlib.import_module(f"bench.scenarios.{SCENARIOS[scenario]}")
            try:
                result: ScenarioResult = module.run(mode, pg)
            except Exception as exc:  # report and go on with the other scenarios
                failed = True
                logging.getLogger("bench").exception("scenario %s crashed", scenario)
                print(f"\n== {scenario} crashed: {exc!r}")
                continue
            result.seconds = time.perf_counter() - started
            entry = _entry(result, mode, box)
            results["scenarios"][scenario] = entry
            if mode == "full":  # kept until the next full run, shown next to quick runs
                results["full"][scenario] = entry
            _print(result, entry)
    results["machine"] = box
    results["written_at"] = _now()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(_clean(results), indent=1, default=str) + "\n")
    missing = [s for s in SCENARIOS if s not in results["scenarios"]]
    if missing and args.docs.resolve() == DOCS.resolve():
        # The results file is not in git: a partial run in a fresh checkout would render a
        # docs page without the other scenarios' sections.
        print(
            f"\nwrote {_rel(args.results)}; {_rel(args.docs)} left as it is: no results for "
            f"{', '.join(missing)} yet (run them, or every scenario, to regenerate it)"
        )
        return 1 if failed else 0
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    args.docs.write_text(docs.render_docs(results))
    print(f"\nwrote {_rel(args.results)} and {_rel(args.docs)}")
    return 1 if failed else 0


def _entry(result: ScenarioResult, mode: str, box: dict[str, Any]) -> dict[str, Any]:
    return {
        **result.to_json(),
        "verdicts": [v.to_json() for v in check(result)],
        "mode": mode,
        "machine": box,
        "timestamp": _now(),
        "git_commit": box["git_commit"],
    }


def _print(result: ScenarioResult, entry: dict[str, Any]) -> None:
    print(f"\n== {result.id} {result.title}  ({result.seconds:.0f} s)")
    print(f"   {result.setup}")
    for table in result.tables:
        print()
        print(render.console(table))
    if entry["verdicts"]:
        print("\n  Targets:")
        for verdict in entry["verdicts"]:
            print(f"   - {verdict['text']}")
    for note in result.notes:
        print(f"  Note: {note}")


def _load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault("scenarios", {})
    data.setdefault("full", {})
    return data


def _quiet_logs() -> None:
    """Warnings only on the console; audit events (always INFO) are still rendered, into
    the void, so in-process services pay what they pay in production."""
    configure_logging("WARNING")
    for handler in logging.getLogger(AUDIT_LOGGER).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as we do


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _clean(value: Any) -> Any:
    """Strict JSON: NaN and infinities (figures not measured) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
