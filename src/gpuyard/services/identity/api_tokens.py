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

from gpuyard.auth.caller import Caller, CredentialKind
from gpuyard.auth.opaque_tokens import digest, display_prefix, new_api_token
from gpuyard.auth.permissions import Permission, Target
from gpuyard.domain.errors import Conflict, Forbidden, NotFound
from gpuyard.domain.identity import ApiToken
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import check_object
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store import identity

#: Active tokens one user may hold; a leak is easier to contain with fewer.
MAX_TOKENS_PER_USER = 50


def create_api_token(
    ctx: ServiceContext, caller: Caller, name: str, expires_in_days: int | None
) -> tuple[ApiToken, str]:
    """Returns the token's read model and the token itself, which is never shown again."""
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
        active = identity.count_active_api_tokens(session, caller.user_id)
        if active >= MAX_TOKENS_PER_USER:
            raise Conflict(f"you already have {active} API tokens; revoke some first")
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        created = identity.insert_api_token(
            session,
            user_id=caller.user_id,
            name=name,
            token_hash=digest(token),
            display_prefix=display_prefix(token),
            created_at=now,
            expires_at=expires_at,
        )
        details = {
            "name": name,
            "display_prefix": created.display_prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
        record_audit(
            session, AuditActor.of(caller), "token.create", "api_token", created.id, now, details
        )
    return created, token


def list_api_tokens(ctx: ServiceContext, caller: Caller) -> list[ApiToken]:
    """The caller's own tokens that are not revoked (expired ones included), newest first."""
    with ctx.db.read() as session:
        return identity.active_api_tokens(session, caller.user_id)


def revoke_api_token(ctx: ServiceContext, caller: Caller, token_id: str) -> None:
    """Revoke the token; NotFound when there is none or it is revoked already."""
    now = ctx.now()
    with ctx.db.write() as session:
        found = identity.get_api_token(session, token_id)
        if found is None or found.revoked_at is not None:
            raise NotFound.for_object("API token", token_id)
        check_object(
            session,
            caller,
            Permission.TOKEN_MANAGE,
            Target(owner_id=found.user_id),
            read=Permission.TOKEN_MANAGE,
            kind="API token",
            object_id=token_id,
        )
        identity.revoke_api_token(session, found.id, now)
        details = {"name": found.name, "display_prefix": found.display_prefix}
        record_audit(
            session, AuditActor.of(caller), "token.revoke", "api_token", found.id, now, details
        )
    ctx.callers.clear()
