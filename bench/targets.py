"""The figures to reach (issue 8), checked against a run: Kueue's ``rangespec`` for bench/.

A benchmark never fails on time; this only says, per target, whether the run met it and by
how much it missed, so the table and docs/benchmarks.md can say it plainly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench import render
from bench.result import ScenarioResult


@dataclass(frozen=True)
class Target:
    scenario: str
    figure: str  # key in ScenarioResult.figures
    op: str  # ">=" or "<="
    value: float
    label: str
    unit: str = ""


_S5_LABEL = "fewer unallocated GPUs than best-fit (default policy)"
_S9_LABEL = "Kueue baseline replica, creation to last finish (Kueue: 351 s)"
_S7_RENDER = "first meaningful render, median (worst page, 1,000 servers / 10,000 workloads)"

TARGETS: tuple[Target, ...] = (
    Target("S1", "e2e_basic_per_s", ">=", 810, "end to end, 1 cpu / 1 GB", "/s"),
    Target("S1", "e2e_gpu_per_s", ">=", 500, "end to end, GPU workloads", "/s"),
    Target("S2", "oversubscriptions", "<=", 0, "oversubscriptions"),
    Target("S2", "partial_gangs", "<=", 0, "partial gangs"),
    Target("S2", "commits_per_s", ">=", 300, "commits/s", "/s"),
    Target("S3", "placements_per_s", ">=", 600, "placements/s under preemption", "/s"),
    Target("S3", "minimal_victims_pct", ">=", 99, "minimal victims", "%"),
    Target("S3", "thrash_cycles", "<=", 0, "thrash cycles"),
    Target("S4", "jain_settle_worst_s", "<=", 30, "Jain >= 0.95 after a change (worst)", " s"),
    Target("S4", "gpu_util_borrowing_pct", ">=", 95, "GPU utilisation while borrowing", "%"),
    Target("S5", "fewer_unallocated_vs_best_fit_pct", ">=", 40, _S5_LABEL, "%"),
    Target("S6", "p95_s", "<=", 0.5, "live update p95 (worst backend)", " s"),
    Target("S6", "lost", "<=", 0, "live updates lost"),
    Target("S7", "first_render_median_s", "<=", 1.0, _S7_RENDER, " s"),
    Target("S7", "live_p95_s", "<=", 0.5, "live update on an open page, p95 (worst page)", " s"),
    Target("S7", "live_lost", "<=", 0, "live updates never shown"),
    Target("S8", "pool_p50_s", "<=", 0.2, "launch to running from a warm pool, p50", " s"),
    Target("S8", "speedup_p50", ">=", 5, "warm pool vs cold start, p50", "x"),
    Target("S9", "wall_to_last_finish_s", "<=", 175, _S9_LABEL, " s"),
)


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None
    met: bool | None  # None = not measured in this run

    @property
    def text(self) -> str:
        t = self.target
        want = f"{t.op} {_num(t.value)}{t.unit}"
        if self.met is None or self.value is None:
            return f"{t.label}: not measured ({want})"
        got = f"{_num(self.value)}{t.unit}"
        if self.met:
            return f"{t.label}: {got} (target {want}) - met"
        if t.op == ">=" and t.value:
            short = (t.value - self.value) / t.value * 100
            return f"{t.label}: {got} (target {want}) - MISSED by {short:.0f}%"
        return f"{t.label}: {got} (target {want}) - MISSED"

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.target.scenario,
            "figure": self.target.figure,
            "label": self.target.label,
            "op": self.target.op,
            "target": self.target.value,
            "unit": self.target.unit,
            "value": self.value,
            "met": self.met,
            "text": self.text,
        }


def check(result: ScenarioResult) -> list[Verdict]:
    """The verdict on every target of ``result``'s scenario."""
    out = []
    for target in TARGETS:
        if target.scenario != result.id:
            continue
        raw = result.figures.get(target.figure)
        value = float(raw) if isinstance(raw, int | float) else None
        if value is None or math.isnan(value):
            out.append(Verdict(target, None, None))
            continue
        met = value >= target.value if target.op == ">=" else value <= target.value
        out.append(Verdict(target, value, met))
    return out


def _num(value: float) -> str:
    # The tables' format (a p50 of 0.0093 s reads 0.01 s, not 0.0 s).
    number = float(value)
    return render.cell(int(number) if number.is_integer() else number)
