"""API tokens: created by a user for scripts, shown once, stored as a SHA-256 digest,
listable and revocable by their owner, optionally expiring.

Only a login session creates tokens; an API token cannot. A token that could mint tokens
would let whoever holds a leaked one keep access after it is revoked or expires (mint a
fresh one, without expiry, first). Capping the child's expiry at the parent's and
revoking children with their parent would close that too, but would also make a token
that rotates itself pointless (its replacement dies with it) while adding a family tree
to every revocation; refusing is the same guarantee, stated plainly. A script that needs
a new token gets it from a person's login (the dashboard, or ``gpuyard login``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from gpuyard.auth.caller import Caller, CredentialKind
from gpuyard.auth.opaque_tokens import digest, display_prefix, new_api_token
from gpuyard.auth.permissions import Permission, Target
from gpuyard.domain.errors import Conflict, Forbidden, NotFound
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import check_object
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.token_tables import ApiTokenRow

#: Active tokens one user may hold; a leak is easier to contain with fewer.
MAX_TOKENS_PER_USER = 50


def create_api_token(
    ctx: ServiceContext, caller: Caller, name: str, expires_in_days: int | None
) -> tuple[ApiTokenRow, str]:
    """Returns the row and the token itself, which is never shown again."""
    credential = caller.credential
    if credential is not None and credential.kind is CredentialKind.API_TOKEN:
        raise Forbidden(
            "an API token cannot create API tokens (a leaked token could otherwise outlive "
            "its revocation); create tokens from a login session: the dashboard, or "
            "`gpuyard login` then POST /api/v1/tokens"
        )
    now = ctx.now()
    token = new_api_token()
    with ctx.db.write() as session:
        active = session.scalar(
            select(func.count())
            .select_from(ApiTokenRow)
            .where(ApiTokenRow.user_id == caller.user_id, ApiTokenRow.revoked_at.is_(None))
        )
        if (active or 0) >= MAX_TOKENS_PER_USER:
            raise Conflict(f"you already have {active} API tokens; revoke some first")
        row = ApiTokenRow(
            user_id=caller.user_id,
            name=name,
            token_hash=digest(token),
            display_prefix=display_prefix(token),
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        session.add(row)
        session.flush()
        details = {
            "name": name,
            "display_prefix": row.display_prefix,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        }
        record_audit(
            session, AuditActor.of(caller), "token.create", "api_token", row.id, now, details
        )
    return row, token


def list_api_tokens(ctx: ServiceContext, caller: Caller) -> list[ApiTokenRow]:
    """The caller's own tokens that are not revoked (expired ones included), newest first."""
    with ctx.db.read() as session:
        rows = session.scalars(
            select(ApiTokenRow)
            .where(ApiTokenRow.user_id == caller.user_id, ApiTokenRow.revoked_at.is_(None))
            .order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
        ).all()
        return list(rows)


def revoke_api_token(ctx: ServiceContext, caller: Caller, token_id: str) -> None:
    now = ctx.now()
    with ctx.db.write() as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or row.revoked_at is not None:
            raise NotFound.for_object("API token", token_id)
        check_object(
            session,
            caller,
            Permission.TOKEN_MANAGE,
            Target(owner_id=row.user_id),
            read=Permission.TOKEN_MANAGE,
            kind="API token",
            object_id=token_id,
        )
        row.revoked_at = now
        details = {"name": row.name, "display_prefix": row.display_prefix}
        record_audit(
            session, AuditActor.of(caller), "token.revoke", "api_token", row.id, now, details
        )
    ctx.callers.clear()
