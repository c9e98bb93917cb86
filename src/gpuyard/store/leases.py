"""Taking and renewing a lease with one compare-and-set (see lease_tables)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.store.database import Database
from gpuyard.store.lease_tables import LeaseRow


def try_acquire_lease(
    session: Session, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew ``name`` for ``holder`` until ``now + ttl``; False while another
    holder's lease has not expired."""
    renewed = session.execute(
        update(LeaseRow)
        .where(
            LeaseRow.name == name,
            or_(LeaseRow.holder == holder, LeaseRow.expires_at < now),
        )
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount == 1:  # type: ignore[attr-defined]
        return True
    try:
        with session.begin_nested():
            session.execute(insert(LeaseRow).values(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False  # someone else holds it (or took it first just now)
    return True


def release_lease(session: Session, name: str, holder: str, now: datetime) -> None:
    """Let the lease lapse at once (a stopping process hands over without waiting)."""
    session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def leases_on_by_default(db: Database) -> bool:
    """Whether loop leases are on when the settings leave them unset: with PostgreSQL, which
    several processes commonly share, not with the embedded SQLite."""
    return not db.is_sqlite
