"""The invites repository: single-use registration codes (stored as digests).

Every function takes the caller's Session and never commits (the service owns the
transaction); what is returned is a read model (domain/identity.py) built inside that
session, never a row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from gpuyard.domain.identity import Invite, InviteStatus
from gpuyard.store.base import as_utc, as_utc_or_none
from gpuyard.store.identity_tables import (
    InviteRow,
)

# --- invites -----------------------------------------------------------------------------


def invite_of(row: InviteRow) -> Invite:
    """The read model of an invite row."""
    return Invite(
        id=row.id,
        email=row.email,
        role=row.role,
        team_id=row.team_id,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        used_at=as_utc_or_none(row.used_at),
        used_by=row.used_by,
    )


def insert_invite(
    session: Session,
    *,
    code_hash: str,
    email: str,
    role: str,
    team_id: str | None,
    created_by: str,
    created_at: datetime,
    expires_at: datetime,
) -> Invite:
    """Insert an invite (``code_hash``: the digest of its code) and return it."""
    row = InviteRow(
        code_hash=code_hash,
        email=email,
        role=role,
        team_id=team_id,
        created_by=created_by,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return invite_of(row)


def invite_by_code_hash(session: Session, code_hash: str) -> Invite | None:
    """The invite whose code has the digest ``code_hash``, or None."""
    row = session.scalar(select(InviteRow).where(InviteRow.code_hash == code_hash))
    return invite_of(row) if row is not None else None


def claim_invite(session: Session, invite_id: str, now: datetime) -> bool:
    """Mark the invite used (compare-and-set on used_at); False when it already was. A
    concurrent claimant waits on the row (PostgreSQL) or on the write lock (SQLite)."""
    claimed = session.execute(
        update(InviteRow)
        .where(InviteRow.id == invite_id, InviteRow.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def set_invite_used_by(session: Session, invite_id: str, user_id: str) -> None:
    """Record which user signed up with the invite; the invite must exist."""
    row = session.get_one(InviteRow, invite_id)
    row.used_by = user_id


def _in_status(status: InviteStatus, now: datetime) -> ColumnElement[bool]:
    unused = InviteRow.used_at.is_(None)
    match status:
        case InviteStatus.USED:
            return InviteRow.used_at.is_not(None)
        case InviteStatus.PENDING:
            return unused & (InviteRow.expires_at > now)
        case InviteStatus.EXPIRED:
            return unused & (InviteRow.expires_at <= now)


def find_invites(
    session: Session, status: InviteStatus | None, now: datetime, limit: int, offset: int
) -> tuple[list[Invite], int]:
    """Invites, newest first, in ``status`` as of ``now`` (None: any), with the count."""
    query = select(InviteRow)
    if status is not None:
        query = query.where(_in_status(status, now))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(InviteRow.created_at.desc(), InviteRow.id.desc()).limit(limit).offset(offset)
    ).all()
    return [invite_of(r) for r in rows], count


def invite_by_id(session: Session, invite_id: str) -> Invite | None:
    """The invite ``invite_id``, or None."""
    row = session.get(InviteRow, invite_id)
    return invite_of(row) if row is not None else None


def delete_unused_invite(session: Session, invite_id: str) -> bool:
    """Delete the invite unless it was used (compare-and-set on used_at, the guard a
    registration claims with); False when it was used meanwhile or is gone."""
    deleted = session.execute(
        delete(InviteRow)
        .where(InviteRow.id == invite_id, InviteRow.used_at.is_(None))
        .execution_options(synchronize_session=False)
    )
    return bool(deleted.rowcount == 1)  # type: ignore[attr-defined]
