"""How the CLI prints lists and records: tables that fit the terminal, short ids, human ages,
and machine formats (``-o json|yaml|wide``, ``-q``) that scripts can rely on.

Tables never wrap a cell: every column keeps its natural width except one (the reason,
usually), which is cut with an ellipsis to what the terminal leaves it; on a terminal too
narrow even then, the least useful columns (age, priority...) are left out. Ids are shown as the
shortest prefix (at least 8 characters) unique among the rows, as git and docker do; every
command that takes an id accepts such a prefix. ``-o json``/``yaml`` print the API's own
objects unchanged and ``-q`` the full ids, so scripts never depend on the table layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.cells import cell_len, set_cell_size
from rich.console import Console

SHORT_ID_LENGTH = 8
#: A cut column keeps at least this many cells, even on a very narrow terminal.
MIN_SHRUNK_WIDTH = 12
#: The least a cut column keeps when no other column is left to drop ("0/4…").
MIN_CUT_WIDTH = 4
#: Spaces between two columns.
COLUMN_GAP = 2


class OutputFormat(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table (fits the terminal), wide (every column, full ids), json or yaml",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="print full ids only")]

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One table column: its header and how a row's cell is made."""

    header: str
    value: Callable[[Row], str]
    #: Shown only with ``-o wide``.
    wide_only: bool = False
    #: The column cut (with an ellipsis) when the table is wider than the terminal.
    shrinks: bool = False
    #: Holds an id: shortened to its unique prefix unless ``-o wide``.
    is_id: bool = False
    #: Left out when the terminal is too narrow even with the shrinking column cut, lowest
    #: rank first; None: always shown.
    drop_rank: int | None = None


def short_ids(ids: Iterable[str], minimum: int = SHORT_ID_LENGTH) -> dict[str, str]:
    """Each id's shortest prefix, at least ``minimum`` long, that no other id starts with."""
    ordered = sorted(set(ids))
    shortest: dict[str, str] = {}
    for i, current in enumerate(ordered):
        length = minimum
        for neighbour in ordered[max(i - 1, 0) : i] + ordered[i + 1 : i + 2]:
            common = 0
            for a, b in zip(current, neighbour, strict=False):
                if a != b:
                    break
                common += 1
            length = max(length, common + 1)
        shortest[current] = current[:length]
    return shortest


def human_age(moment: str | datetime | None, now: datetime | None = None) -> str:
    """'45s', '12m', '3h', '5d' since ``moment`` (an API timestamp); '-' when unknown."""
    if moment is None:
        return "-"
    return human_duration(((now or datetime.now(UTC)) - _as_utc(moment)).total_seconds())


def human_eta(moment: str | datetime | None, now: datetime | None = None) -> str:
    """'in 12m', 'in 3h' until ``moment`` (an API timestamp); 'now' when due; '-' unknown."""
    if moment is None:
        return "-"
    seconds = (_as_utc(moment) - (now or datetime.now(UTC))).total_seconds()
    return "now" if seconds < 1 else f"in {human_duration(seconds)}"


def _as_utc(moment: str | datetime) -> datetime:
    """An API timestamp (naive ones are UTC) as an aware datetime."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable: 45s, 12m, 3h5m, 5d."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        hours, minutes = divmod(int(seconds // 60), 60)
        return f"{hours}h{minutes}m" if minutes and hours < 10 else f"{hours}h"
    return f"{int(seconds // 86400)}d"


def number(value: float) -> str:
    """A resource figure without a trailing '.0'."""
    return f"{value:g}"


def print_records(
    console: Console,
    rows: Sequence[Row],
    columns: Sequence[Column],
    output: OutputFormat = OutputFormat.TABLE,
    quiet: bool = False,
    id_key: str = "id",
) -> None:
    """Print API objects as ids (``quiet``), JSON, YAML or a table of ``columns``."""
    if quiet:
        for row in rows:
            typer.echo(row[id_key])
        return
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(list(rows), indent=2, ensure_ascii=False))
        return
    if output is OutputFormat.YAML:
        typer.echo(yaml.safe_dump(list(rows), sort_keys=False, allow_unicode=True), nl=False)
        return
    for line in table_lines(rows, columns, wide=output is OutputFormat.WIDE, width=console.width):
        typer.echo(line)


def print_record(console: Console, record: Row, output: OutputFormat, lines: list[str]) -> None:
    """One object: JSON or YAML as the API gave it, or the ``lines`` a person reads."""
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
    elif output is OutputFormat.YAML:
        typer.echo(yaml.safe_dump(record, sort_keys=False, allow_unicode=True), nl=False)
    else:
        for line in lines:
            console.print(line, markup=False, highlight=False)


def table_lines(
    rows: Sequence[Row], columns: Sequence[Column], wide: bool, width: int
) -> list[str]:
    """The lines of a borderless table (two spaces between columns), one line per row.

    ``wide``: every column at its natural width, however long the lines. Otherwise the lines
    fit ``width``: the shrinking column is cut first (down to ``MIN_SHRUNK_WIDTH``), then
    columns with a ``drop_rank`` are left out, lowest rank first, until the rest fits.
    """
    shown = [c for c in columns if wide or not c.wide_only]
    ids = short_ids(
        value for c in shown if c.is_id for row in rows if (value := c.value(row)) != "-"
    )
    cells = {
        c.header: [
            c.value(row) if wide or not c.is_id else ids.get(c.value(row), c.value(row))
            for row in rows
        ]
        for c in shown
    }
    natural = {
        c.header: max([cell_len(c.header), *(cell_len(v) for v in cells[c.header])]) for c in shown
    }
    widths = dict(natural)
    if not wide:
        droppable = sorted((c for c in shown if c.drop_rank is not None), key=_drop_rank)
        while True:
            widths = {c.header: natural[c.header] for c in shown}
            fixed = sum(w for c in shown if not c.shrinks for w in [widths[c.header]])
            gaps = COLUMN_GAP * (len(shown) - 1)
            # With nothing left to drop, the cut column takes what remains, however little.
            floor = MIN_SHRUNK_WIDTH if droppable else MIN_CUT_WIDTH
            for c in shown:
                if c.shrinks:
                    room = max(width - fixed - gaps, floor)
                    widths[c.header] = min(natural[c.header], room)
            if sum(widths.values()) + gaps <= width or not droppable:
                break
            gone = droppable.pop(0)
            shown = [c for c in shown if c is not gone]
    lines = [
        _joined([_fit(c.header, widths[c.header]) for c in shown]),
        *(
            _joined([_fit(cells[c.header][i], widths[c.header]) for c in shown])
            for i in range(len(rows))
        ),
    ]
    return lines


def _drop_rank(column: Column) -> int:
    return column.drop_rank or 0


def _fit(text: str, width: int) -> str:
    """``text`` padded to ``width`` cells, or cut to it with an ellipsis."""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return set_cell_size(text, width - 1) + "…"


def _joined(cells: list[str]) -> str:
    return (" " * COLUMN_GAP).join(cells).rstrip()
