"""Leases: which process runs a singleton loop (the scheduler of a deployment).

A plain table, so the same compare-and-set works on SQLite and PostgreSQL. The lease is
an efficiency measure (one decider plans; the others do not waste cycles on decisions
that would go stale); correctness never depends on it, the reservation guards hold
without it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base


class LeaseRow(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
