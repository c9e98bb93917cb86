"""Login and the current user."""

from __future__ import annotations

from fastapi import APIRouter

from gpuyard.api.converters import user_public
from gpuyard.api.deps import CallerDep, ContextDep
from gpuyard.api.schemas.auth import LoginRequest, TokenPublic, UserPublic
from gpuyard.domain.errors import NotFound
from gpuyard.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=TokenPublic)
def login(ctx: ContextDep, body: LoginRequest) -> TokenPublic:
    token, expires_at, user = auth_service.login(ctx, body.email, body.password)
    return TokenPublic(access_token=token, expires_at=expires_at, user=user_public(user))


@router.get("/me", response_model=UserPublic)
def me(ctx: ContextDep, caller: CallerDep) -> UserPublic:
    user = auth_service.get_user(ctx, caller.user_id)
    if user is None:
        raise NotFound.for_object("user", caller.user_id)
    return user_public(user)
