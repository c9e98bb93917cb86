"""Taking and renewing a lease with one compare-and-set, and fencing a holder's writes
with the lease's token (see lease_tables)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.store.database import Database
from gpuyard.store.lease_tables import LeaseRow


def acquire_lease(
    session: Session, name: str, holder: str, now: datetime, ttl: timedelta
) -> int | None:
    """Take or renew ``name`` for ``holder`` until ``now + ttl``: its fencing token, or
    None while another holder's lease has not expired.

    A renewal keeps the token; taking the lease once it lapsed (another holder's, or this
    holder's own) increments it, so whatever the previous term still tries to write is
    fenced off (:func:`fence_holds`)."""
    lease = LeaseRow
    token = session.execute(
        update(lease)
        .where(lease.name == name, or_(lease.holder == holder, lease.expires_at < now))
        # The CASE reads the row as it was before this UPDATE (SQL semantics).
        .values(
            holder=holder,
            expires_at=now + ttl,
            token=case((lease.expires_at < now, lease.token + 1), else_=lease.token),
        )
        .returning(lease.token)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if token is not None:
        return int(token)
    try:
        with session.begin_nested():
            session.execute(
                insert(lease).values(name=name, holder=holder, expires_at=now + ttl, token=1)
            )
    except IntegrityError:
        return None  # someone else holds it (or took it first just now)
    return 1


def try_acquire_lease(
    session: Session, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew ``name`` for ``holder`` until ``now + ttl``; False while another
    holder's lease has not expired."""
    return acquire_lease(session, name, holder, now, ttl) is not None


def fence_holds(session: Session, name: str, holder: str, token: int) -> bool:
    """Whether ``holder`` still holds ``name`` at ``token``, locking the lease row until the
    caller's transaction ends.

    A guarded UPDATE that changes nothing: on PostgreSQL it takes the row lock, so a
    takeover (an UPDATE of the same row) waits until this transaction has committed or
    rolled back; on SQLite the write transaction already holds the database's write lock.
    No expiry test: a lapsed lease nobody took over still has this token, and whoever
    takes it increments the token first, so a token names one holder's term."""
    lease = LeaseRow
    result = session.execute(
        update(lease)
        .where(lease.name == name, lease.holder == holder, lease.token == token)
        .values(token=lease.token)
        .execution_options(synchronize_session=False)
    )
    held: int = result.rowcount  # type: ignore[attr-defined]
    return held == 1


def release_lease(session: Session, name: str, holder: str, now: datetime) -> None:
    """Let the lease lapse at once (a stopping process hands over without waiting)."""
    session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def holders_of(session: Session, prefix: str, now: datetime) -> dict[str, str]:
    """{lease name: holder} of the unexpired leases whose names start with ``prefix``."""
    lease = LeaseRow
    rows = session.execute(
        select(lease.name, lease.holder).where(
            lease.name.startswith(prefix, autoescape=True), lease.expires_at >= now
        )
    )
    return {name: holder for name, holder in rows}


def forget_lapsed_leases(session: Session, prefix: str, before: datetime) -> None:
    """Delete the leases named ``prefix...`` that lapsed before ``before`` (leases named after
    a process, which no other process will ever take)."""
    session.execute(
        delete(LeaseRow)
        .where(LeaseRow.name.startswith(prefix, autoescape=True), LeaseRow.expires_at < before)
        .execution_options(synchronize_session=False)
    )


def release_leases_named(session: Session, prefix: str, holder: str, now: datetime) -> None:
    """Let every lease named ``prefix...`` that ``holder`` holds lapse at once."""
    session.execute(
        update(LeaseRow)
        .where(
            LeaseRow.name.startswith(prefix, autoescape=True),
            LeaseRow.holder == holder,
            LeaseRow.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def leases_on_by_default(db: Database) -> bool:
    """Whether loop leases are on when the settings leave them unset: with PostgreSQL, which
    several processes commonly share, not with the embedded SQLite."""
    return not db.is_sqlite
