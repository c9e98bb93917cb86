"""Idle culling and maximum lifetime (issue 19, migration 0016).

``culling_policies`` holds the policies set per team (``team_id``, removed with its team)
or per image type (``image_type``, a catalog image's ``type``); exactly one of the two is
set. A NULL field is not set at that level (the policy's rules: ``domain/culling.py``).

``workload_culling`` is the culling loop's memory, one row per running workload it has
looked at: when it became idle, what was announced and when it will be stopped. It is
its own table so that the loop's writes leave ``workloads`` alone (no version bump, no
change mark, nothing for the scheduler's snapshot cache to re-read); it goes with its
workload.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base, new_id, utcnow


class CullingPolicyRow(Base):
    __tablename__ = "culling_policies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), unique=True
    )
    image_type: Mapped[str | None] = mapped_column(String(32), unique=True)
    #: on, off, never; NULL: not set here.
    mode: Mapped[str | None] = mapped_column(String(8))
    threshold_pct: Mapped[float | None]
    window_s: Mapped[int | None]
    max_lifetime_s: Mapped[int | None]
    updated_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("(team_id IS NULL) <> (image_type IS NULL)", name="one_subject"),
        CheckConstraint("mode IS NULL OR mode IN ('on', 'off', 'never')", name="mode"),
        CheckConstraint(
            "threshold_pct IS NULL OR (threshold_pct >= 0 AND threshold_pct <= 100)",
            name="threshold_range",
        ),
        CheckConstraint("window_s IS NULL OR window_s > 0", name="window_positive"),
        CheckConstraint("max_lifetime_s IS NULL OR max_lifetime_s > 0", name="lifetime_positive"),
    )


class WorkloadCullingRow(Base):
    __tablename__ = "workload_culling"

    workload_id: Mapped[str] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True
    )
    idle_since: Mapped[datetime | None]
    idle_peak_pct: Mapped[float | None]
    idle_warned_at: Mapped[datetime | None]
    idle_stop_at: Mapped[datetime | None]
    lifetime_warned_at: Mapped[datetime | None]
    lifetime_stop_at: Mapped[datetime | None]
    unsupported_noted: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: Why its runtime gives no utilisation signal, as the note said (migration 0017).
    no_signal_reason: Mapped[str | None] = mapped_column(String(300))
    #: The last reading of the workload's cumulative CPU time (docker, no GPU), to turn
    #: the next one into a utilisation.
    cpu_seconds: Mapped[float | None]
    cpu_seen_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
