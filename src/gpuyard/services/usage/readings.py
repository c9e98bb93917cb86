"""Docker servers' real usage: the health loop's probe already fetched the agent's
inventory, so its apply step keeps the readings here (no second call per server); the
sampling loop reads them while they are fresh."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.domain.usage import UsageReading
from gpuyard.services.loops.item_failures import blames_item, report_item_failure
from gpuyard.store import usage_history


def record_probe_reading(
    session: Session, server_id: str, reading: UsageReading | None, at: datetime
) -> None:
    """Keep the usage a probe's inventory reported (nothing when it reported none) as
    the server's last reading, inside the probe's apply transaction (no network I/O
    here). In its own savepoint: a reading that cannot be kept is logged once and never
    costs the probe its result (the server's missed-probe count, its status)."""
    if reading is None:
        return
    try:
        with session.begin_nested():
            usage_history.record_reading(session, server_id, at, reading)
    except Exception as exc:
        if not blames_item(exc):
            raise
        report_item_failure("health", f"server {server_id}", exc, "usage reading not kept")
