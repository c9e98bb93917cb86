"""The utilisation/allocation history (issue 15) and the latest agent readings it samples.

``usage_samples`` holds one row per series and bucket: raw samples (``bucket_s`` 0, one
per sampling tick) and their rollups (``bucket_s`` 60 and 900). A series is a server (its
id) or the whole fleet (:data:`FLEET_SERIES`; server ids are 32 hex characters, so the two
never meet). ``figures`` is an opaque blob the database never filters on: figure name ->
percent (raw) or [mean, highest] (rollups); see ``domain/usage.py``. Rows of a deleted
server age out with the others; there is no foreign key, so a delete never waits on them.

``usage_readings`` keeps each docker server's last reading, written by the health loop
from the inventory its probe fetched anyway, read by the sampling loop.

``team_usage_decay`` keeps each team's decayed past allocation (time-based fair share,
``scheduler/usage_decay.py``; migration 0023), accrued by the history loop while
``GPUYARD_FAIRSHARE_HALF_LIFE_S`` is set and read by the scheduler's snapshot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Double, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base

#: The series of the fleet's totals.
FLEET_SERIES = "fleet"


class UsageSampleRow(Base):
    __tablename__ = "usage_samples"

    series: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: 0: a raw sample; else the width of the rolled-up bucket in seconds.
    bucket_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The bucket's start (raw: the sampling slot), in seconds since the epoch (UTC).
    t: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: How many raw samples the row stands for (1 for a raw sample).
    samples: Mapped[int] = mapped_column(Integer)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_usage_samples_bucket_s_t", "bucket_s", "t"),)


class UsageReadingRow(Base):
    __tablename__ = "usage_readings"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    at: Mapped[datetime]
    cpu_used_pct: Mapped[float | None]
    ram_used_pct: Mapped[float | None]
    #: [[gpu index, utilisation % or null, memory used % or null], ...]
    gpus: Mapped[list[Any]] = mapped_column(JSON)


class TeamUsageDecayRow(Base):
    __tablename__ = "team_usage_decay"

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    #: The team's own workloads' allocation integrated with the decay, in internal units
    #: times seconds (milli-core-seconds, MiB-seconds, ...), as of ``accrued_at``.
    cpu_milli_s: Mapped[float] = mapped_column(Double)
    ram_mib_s: Mapped[float] = mapped_column(Double)
    storage_mib_s: Mapped[float] = mapped_column(Double)
    gpu_milli_s: Mapped[float] = mapped_column(Double)
    #: Seconds since the epoch (UTC) of the last accrual.
    accrued_at: Mapped[float] = mapped_column(Double)
    #: Compare-and-set of accruals: two processes ticking at once (leases off) must not
    #: both add the same interval (docs/concurrency.md #38).
    version: Mapped[int] = mapped_column(default=1)
