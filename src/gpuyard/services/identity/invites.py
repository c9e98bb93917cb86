"""Invites and registration: an admin (or a team admin, into their team) creates a
single-use code; registering with it creates the account with the invite's role and team.
"""

from __future__ import annotations

from datetime import timedelta

from gpuyard.auth.caller import Caller
from gpuyard.auth.opaque_tokens import digest, new_invite_code
from gpuyard.auth.passwords import hash_password
from gpuyard.auth.permissions import Permission, Target
from gpuyard.auth.roles import Role
from gpuyard.domain.emails import email_lookup_keys
from gpuyard.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from gpuyard.domain.identity import Invite, InviteStatus, User
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import may
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.identity.users import add_user, valid_email
from gpuyard.store import identity
from gpuyard.store import invites as invite_store
from gpuyard.store import teams as team_store

_UNKNOWN_CODE = "unknown invite code"


def create_invite(
    ctx: ServiceContext,
    caller: Caller,
    email: str,
    role: Role,
    team_id: str | None,
    ttl_hours: float | None = None,
) -> tuple[Invite, str]:
    """Create an invite; returns it and the code (shown once, stored hashed)."""
    now = ctx.now()
    email = valid_email(email)
    with ctx.db.write() as session:
        # Admins invite into any team or none; team admins only into a team they run.
        if not may(session, caller, Permission.INVITE_CREATE, Target(team_id=team_id)):
            if team_id is None:
                raise Forbidden("only admins invite without a team; team admins name their team")
            raise InvalidInput.for_field("team_id", f"you are not an admin of team {team_id!r}")
        if team_id is not None and team_store.get_team(session, team_id) is None:
            raise InvalidInput.for_field("team_id", f"team {team_id!r} does not exist")
        # Granting a role above user is user management.
        if role is not Role.USER and not may(session, caller, Permission.USER_MANAGE, Target()):
            raise Forbidden("team admins invite users; only admins grant other roles")
        if identity.email_taken(session, email):
            raise Conflict(f"an account for {email} already exists")
        code = new_invite_code()
        hours = ttl_hours if ttl_hours is not None else ctx.settings.invite_ttl_hours
        expires_at = now + timedelta(hours=hours)
        invite = invite_store.insert_invite(
            session,
            code_hash=digest(code),
            email=email,
            role=role.value,
            team_id=team_id,
            created_by=caller.user_id,
            created_at=now,
            expires_at=expires_at,
        )
        record_audit(
            session,
            AuditActor.of(caller),
            "invite.create",
            "invite",
            invite.id,
            now,
            {
                "email": email,
                "role": role.value,
                "team_id": team_id,
                "expires_at": expires_at.isoformat(),
            },
        )
    return invite, code


def list_invites(
    ctx: ServiceContext, status: InviteStatus | None, limit: int, offset: int
) -> tuple[list[Invite], int]:
    """Invites, newest first, narrowed to pending, used or expired (as of now), with the
    total count. The codes are never listed: only their digests are stored."""
    with ctx.db.read() as session:
        return invite_store.find_invites(session, status, ctx.now(), limit, offset)


def revoke_invite(ctx: ServiceContext, caller: Caller, invite_id: str) -> None:
    """Withdraw an unused invite (pending or expired): its code stops working at once. A
    used invite is the record of how an account was made: Conflict."""
    now = ctx.now()
    with ctx.db.write() as session:
        invite = invite_store.invite_by_id(session, invite_id)
        if invite is None:
            raise NotFound.for_object("invite", invite_id)
        # The same guard a registration claims the code with: one of the two wins.
        if not invite_store.delete_unused_invite(session, invite_id):
            raise Conflict("this invite was already used; the account it made stays")
        record_audit(
            session,
            AuditActor.of(caller),
            "invite.revoke",
            "invite",
            invite_id,
            now,
            {"email": invite.email, "role": invite.role, "status": invite.status_at(now).value},
        )


def register(
    ctx: ServiceContext,
    email: str,
    password: str,
    invite_code: str,
    username: str | None,
    ip: str | None,
) -> User:
    """Create an account from a valid invite: unknown, used and expired codes are refused,
    each with its own message, and a code works once even under concurrent use."""
    now = ctx.now()
    email = valid_email(email)
    # Counted as a failed guess of a code until the code proves good (auth/login_throttle.py).
    attempt = ctx.login_throttle.begin_attempt(ip, email, now.timestamp())
    password_hash = hash_password(password)  # slow: outside the transaction
    try:
        with ctx.db.write() as session:
            invite = invite_store.invite_by_code_hash(session, digest(invite_code))
            if invite is None:
                raise InvalidInput.for_field("invite_code", _UNKNOWN_CODE)
            if invite.used_at is not None:
                raise InvalidInput.for_field("invite_code", "this invite code was already used")
            expires_at = invite.expires_at
            if expires_at <= now:
                raise InvalidInput.for_field(
                    "invite_code",
                    f"this invite code expired at {expires_at.isoformat(timespec='seconds')}; "
                    "ask for a new one",
                )
            if invite.email.lower() not in email_lookup_keys(email):  # older invites too
                raise InvalidInput.for_field("email", "this invite is for another email address")
            # Claim the code first: a concurrent registration with it waits on this row
            # (PostgreSQL) or on the write lock (SQLite), then finds it used.
            if not invite_store.claim_invite(session, invite.id, now):
                raise InvalidInput.for_field("invite_code", "this invite code was already used")
            if username and identity.username_taken(session, username):
                raise InvalidInput.for_field("username", f"{username!r} is taken")
            if identity.email_taken(session, email):  # under another form (an earlier version's)
                raise Conflict(f"an account for {email} already exists")
            user = add_user(session, email, username, password_hash, invite.role, now)
            invite_store.set_invite_used_by(session, invite.id, user.id)
            if invite.team_id is not None:
                team_store.add_member(session, invite.team_id, user.id)
            record_audit(
                session,
                AuditActor(user.id, email, ip),
                "auth.register",
                "user",
                user.id,
                now,
                {
                    "email": email,
                    "role": invite.role,
                    "team_id": invite.team_id,
                    "invite_id": invite.id,
                },
            )
    except InvalidInput as exc:
        if not any(e.field == "invite_code" for e in exc.errors):
            ctx.login_throttle.not_a_guess(attempt)
        raise
    except Exception:
        ctx.login_throttle.not_a_guess(attempt)
        raise
    ctx.login_throttle.not_a_guess(attempt)
    return user
