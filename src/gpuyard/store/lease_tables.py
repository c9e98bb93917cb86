"""Leases: which process runs a singleton loop (the scheduler of a deployment).

A plain table, so the same compare-and-set works on SQLite and PostgreSQL. The lease is
an efficiency measure (one decider plans; the others do not waste cycles on decisions
that would go stale); correctness never depends on it, the reservation guards hold
without it.

``token`` is the lease's fencing token: it grows by one each time the lease is taken
after it lapsed (by another holder, or by the same one again) and stays the same on a
renewal, so a holder that paused past its lease can tell, in the transaction of its
write, that it no longer holds the lease it had (``store/leases.py``, ``fence_holds``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base


class LeaseRow(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    token: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
