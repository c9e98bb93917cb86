"""What the loops report about items they set aside (services/loops/item_failures.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from gpuyard.services.context import ServiceContext
from gpuyard.services.loops import item_failures
from gpuyard.store.workload_tables import WorkloadRow


@dataclass
class FailureLog:
    """Stands in for item_failures' logger: every line it would have written, kept."""

    lines: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _keep(self, event: str, **values: Any) -> None:
        self.lines.append((event, values))

    error = exception = warning = info = debug = _keep

    def failures(self, loop: str, item: str) -> list[dict[str, Any]]:
        """The 'loop_item_failed' lines about ``item`` of ``loop``."""
        return [
            values
            for event, values in self.lines
            if event == "loop_item_failed" and values["loop"] == loop and values["item"] == item
        ]


def record_failures(monkeypatch: pytest.MonkeyPatch) -> FailureLog:
    """Keep what item_failures logs for the rest of the test."""
    log = FailureLog()
    monkeypatch.setattr(item_failures, "log", log)
    return log


def status_and_reason(ctx: ServiceContext, workload_id: str) -> tuple[str, str | None]:
    """Read with two columns only: the row may hold others that cannot be read."""
    w = WorkloadRow
    with ctx.db.read() as session:
        status, reason = session.execute(
            select(w.status, w.reason).where(w.id == workload_id)
        ).one()
    return status, reason
