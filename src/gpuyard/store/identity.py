"""The identity repository: users, their API tokens and revoked login sessions.

Teams and their invitations are in ``store/teams.py``, invites in ``store/invites.py``.
Every function takes the caller's Session and never commits (the service owns the
transaction); what is returned is a read model (domain/identity.py) built inside that
session, never a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.domain.emails import email_lookup_keys
from gpuyard.domain.identity import (
    ApiToken,
    User,
)
from gpuyard.domain.pools import POOL_OWNER_ID
from gpuyard.store.base import as_utc, as_utc_or_none, dialect_insert
from gpuyard.store.identity_tables import (
    UserRow,
)
from gpuyard.store.token_tables import ApiTokenRow, RevokedSessionRow
from gpuyard.store.workload_tables import WorkloadRow

# --- users -------------------------------------------------------------------------------


def user_of(row: UserRow) -> User:
    """The read model of a user row."""
    return User(
        id=row.id,
        email=row.email,
        username=row.username,
        role=row.role,
        is_active=row.is_active,
        created_at=as_utc(row.created_at),
        credentials_changed_at=as_utc_or_none(row.credentials_changed_at),
    )


def get_user(session: Session, user_id: str) -> User | None:
    """The user, or None when there is none. The warm pools' built-in owner is nobody's
    account: never found here (so never shown, changed, deleted or authenticated)."""
    if user_id == POOL_OWNER_ID:
        return None
    row = session.get(UserRow, user_id)
    return user_of(row) if row is not None else None


def list_users(
    session: Session, role: str | None, limit: int, offset: int, is_active: bool | None = None
) -> tuple[list[User], int]:
    """Users (of ``role``, active or not, if given), newest first, with the total count."""
    # The warm pools' built-in owner (domain/pools.py) is no one's account: not listed.
    query = select(UserRow).where(UserRow.id != POOL_OWNER_ID)
    if role is not None:
        query = query.where(UserRow.role == role)
    if is_active is not None:
        query = query.where(UserRow.is_active.is_(is_active))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(UserRow.created_at.desc(), UserRow.id).limit(limit).offset(offset)
    )
    return [user_of(row) for row in rows], count


def count_users(session: Session) -> int:
    """How many users there are (the warm pools' built-in owner is not one)."""
    query = select(func.count()).select_from(UserRow).where(UserRow.id != POOL_OWNER_ID)
    return session.scalar(query) or 0


def email_taken(session: Session, email: str) -> bool:
    """Whether an account exists under any form of ``email`` (domain/emails.py)."""
    query = select(UserRow.id).where(func.lower(UserRow.email).in_(email_lookup_keys(email)))
    return session.scalar(query) is not None


def username_taken(session: Session, username: str, other_than: str | None = None) -> bool:
    """Whether a user (other than ``other_than``) has ``username``."""
    query = select(UserRow.id).where(UserRow.username == username)
    if other_than is not None:
        query = query.where(UserRow.id != other_than)
    return session.scalar(query) is not None


def insert_user(
    session: Session,
    *,
    email: str,
    username: str | None,
    password_hash: str,
    role: str,
    created_at: datetime,
) -> User | None:
    """Insert a user; None when the email or username is taken (checked under the unique
    indexes, in a savepoint, so two concurrent sign-ups with one email cannot both
    succeed and the caller's transaction goes on)."""
    row = UserRow(
        email=email,
        username=username,
        password_hash=password_hash,
        role=role,
        created_at=created_at,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return user_of(row)


def login_account(session: Session, email_keys: Iterable[str]) -> tuple[User, str] | None:
    """The account stored under any of ``email_keys`` (lower-cased forms of one address),
    with its password hash; the oldest id when several forms match."""
    row = session.scalars(
        select(UserRow).where(func.lower(UserRow.email).in_(list(email_keys))).order_by(UserRow.id)
    ).first()
    return (user_of(row), row.password_hash) if row is not None else None


def set_password_hash(session: Session, user_id: str, password_hash: str) -> None:
    """Replace the user's password hash."""
    session.execute(
        update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
    )


def change_user(session: Session, user_id: str, **values: Any) -> User:
    """Set columns of a user (role, is_active, username, password_hash,
    credentials_changed_at) and return it as changed; the user must exist."""
    row = session.get_one(UserRow, user_id)
    for name, value in values.items():
        setattr(row, name, value)
    return user_of(row)


def delete_user(session: Session, user_id: str) -> None:
    """Delete the user, if there is one."""
    row = session.get(UserRow, user_id)
    if row is not None:
        session.delete(row)


def count_other_active_users(session: Session, role: str, other_than: str) -> int:
    """Active users with ``role``, not counting ``other_than``."""
    return (
        session.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(UserRow.role == role, UserRow.is_active.is_(True), UserRow.id != other_than)
        )
        or 0
    )


def count_workloads_owned(session: Session, user_id: str) -> int:
    """How many workloads ``user_id`` owns."""
    return (
        session.scalar(
            select(func.count()).select_from(WorkloadRow).where(WorkloadRow.owner_id == user_id)
        )
        or 0
    )


def existing_user_ids(session: Session, user_ids: Iterable[str]) -> set[str]:
    """Those of ``user_ids`` that name a user."""
    return set(session.scalars(select(UserRow.id).where(UserRow.id.in_(list(user_ids)))))


# --- API tokens and login sessions -------------------------------------------------------


def api_token_of(row: ApiTokenRow) -> ApiToken:
    """The read model of an API token row."""
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        display_prefix=row.display_prefix,
        created_at=as_utc(row.created_at),
        expires_at=as_utc_or_none(row.expires_at),
        last_used_at=as_utc_or_none(row.last_used_at),
        revoked_at=as_utc_or_none(row.revoked_at),
    )


def count_active_api_tokens(session: Session, user_id: str) -> int:
    """The user's tokens that are not revoked (expired ones included)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ApiTokenRow)
            .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        )
        or 0
    )


def insert_api_token(
    session: Session,
    *,
    user_id: str,
    name: str,
    token_hash: str,
    display_prefix: str,
    created_at: datetime,
    expires_at: datetime | None,
) -> ApiToken:
    """Insert an API token (``token_hash``: the token's digest) and return it."""
    row = ApiTokenRow(
        user_id=user_id,
        name=name,
        token_hash=token_hash,
        display_prefix=display_prefix,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return api_token_of(row)


def active_api_tokens(session: Session, user_id: str) -> list[ApiToken]:
    """The user's tokens that are not revoked (expired ones included), newest first."""
    rows = session.scalars(
        select(ApiTokenRow)
        .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        .order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
    )
    return [api_token_of(row) for row in rows]


def get_api_token(session: Session, token_id: str) -> ApiToken | None:
    """The API token, or None when there is none."""
    row = session.get(ApiTokenRow, token_id)
    return api_token_of(row) if row is not None else None


def api_token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    """The API token whose digest is ``token_hash``, or None."""
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash))
    return api_token_of(row) if row is not None else None


def revoke_api_token(session: Session, token_id: str, now: datetime) -> None:
    """Mark the token revoked at ``now``; the token must exist."""
    row = session.get_one(ApiTokenRow, token_id)
    row.revoked_at = now


def revoke_api_tokens_of(session: Session, user_id: str, now: datetime) -> int:
    """Revoke every unrevoked token of ``user_id``; returns how many."""
    revoked = session.execute(
        update(ApiTokenRow)
        .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(revoked.rowcount)  # type: ignore[attr-defined]


def mark_api_token_used(session: Session, token_id: str, now: datetime) -> None:
    """Set the token's last use to ``now``."""
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now))


def session_revoked(session: Session, jti: str) -> bool:
    """Whether the login session ``jti`` was logged out."""
    return session.get(RevokedSessionRow, jti) is not None


def use_once(session: Session, jti: str, user_id: str, expires_at: datetime, now: datetime) -> bool:
    """Mark the single-use token ``jti`` used, remembered like a logged-out session until
    it expires: True for the one call that marks it, False once it is (a concurrent
    marker's insert is waited for, then conflicts: no check-then-insert window)."""
    session.execute(delete(RevokedSessionRow).where(RevokedSessionRow.expires_at <= now))
    table: Table = RevokedSessionRow.__table__  # type: ignore[assignment]
    inserted = session.execute(
        dialect_insert(session, table)
        .values(jti=jti, user_id=user_id, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["jti"])
        .returning(table.c.jti)  # rowcount is not reliable across drivers here
    )
    return inserted.first() is not None


def revoke_login_session(
    session: Session, jti: str, user_id: str, expires_at: datetime, now: datetime
) -> None:
    """Refuse the login session ``jti`` from now on (kept until it would expire anyway);
    forget revocations whose sessions have expired meanwhile. Revoking twice is fine."""
    use_once(session, jti, user_id, expires_at, now)
