"""What SQL a block of code sends: for tests that promise one statement per table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def updates_sent(engine: Engine) -> Iterator[list[tuple[str, bool]]]:
    """The table of each UPDATE ``engine`` sends while the block runs, and whether it went
    as one ``executemany``."""
    seen: list[tuple[str, bool]] = []

    def record(*args: Any) -> None:
        words, executemany = str(args[2]).split(), args[5]
        if words[0] == "UPDATE":
            seen.append((words[1], bool(executemany)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
