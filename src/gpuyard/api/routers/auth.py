"""Login, registration with an invite code, logout and the current user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import ClientOrigin, public, requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.identity_converters import current_user_public, user_public
from gpuyard.api.schemas.auth import (
    CurrentUserPublic,
    LoginRequest,
    RegisterRequest,
    TokenPublic,
    UserPublic,
)
from gpuyard.api.session_cookies import clear_session_cookies, set_session_cookies
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.identity import auth as auth_service
from gpuyard.services.identity import invites, users

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=TokenPublic)
def login(
    ctx: ContextDep,
    origin: Annotated[ClientOrigin, public(Permission.AUTH_LOGIN)],
    body: LoginRequest,
    response: Response,
) -> TokenPublic:
    """Log in. Wrong password and unknown account get the same 401; too many attempts
    from one address or on one account get a 429 with Retry-After."""
    result = auth_service.login(ctx, body.email, body.password, origin.ip)
    token: str | None = result.access.token
    csrf = None
    if body.set_cookie:
        secure = ctx.settings.session_cookie_secure
        csrf = set_session_cookies(response, result.access, ctx.now(), secure=secure)
        token = None
    return TokenPublic(
        access_token=token,
        expires_at=result.access.expires_at,
        csrf_token=csrf,
        user=user_public(result.user),
    )


@router.post("/register", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def register(
    ctx: ContextDep,
    origin: Annotated[ClientOrigin, public(Permission.AUTH_REGISTER)],
    body: RegisterRequest,
) -> UserPublic:
    """Create an account with a single-use invite code; then log in."""
    user = invites.register(
        ctx, body.email, body.password, body.invite_code, body.username, origin.ip
    )
    return user_public(user)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(ctx: ContextDep, caller: Annotated[Caller, requires(Permission.SESSION)]) -> Response:
    """End this login session: its token is refused from now on, cookies are cleared."""
    auth_service.logout(ctx, caller)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response, secure=ctx.settings.session_cookie_secure)
    return response


@router.get("/me", response_model=CurrentUserPublic)
def me(
    ctx: ContextDep, caller: Annotated[Caller, requires(Permission.SESSION)]
) -> CurrentUserPublic:
    return current_user_public(
        users.get_user(ctx, caller.user_id),
        users.user_teams(ctx, caller.user_id),
        ctx.settings.max_priority_of(caller.role),
    )
