"""What a scenario returns: its figures, the baselines' figures, tables, notes and a profile.

Plain data that serialises to JSON as is (``bench/results/latest.json``) and from which the
console tables and docs/benchmarks.md are rendered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Cell = str | int | float | None


@dataclass
class Table:
    """A titled table; numbers are formatted when rendered."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        self.rows.append(list(cells))


@dataclass
class ScenarioResult:
    """One scenario's outcome. ``figures`` are ours, ``baselines`` per baseline name."""

    id: str
    title: str
    #: What was run: sizes, and that they were scaled down in quick mode.
    setup: str
    figures: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: An excerpt of a profile where a figure falls short (text, may be empty).
    profile: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        tables = [Table(**t) for t in data.get("tables", [])]
        return cls(**{**data, "tables": tables})
