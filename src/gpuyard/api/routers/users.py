"""User administration (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.identity_converters import user_account_public, user_public
from gpuyard.api.schemas.auth import UserPublic
from gpuyard.api.schemas.identity import (
    UserAccountPublic,
    UserCreate,
    UsersPublic,
    UserUpdate,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.auth.roles import Role
from gpuyard.services.identity import users

router = APIRouter(prefix="/users", tags=["users"])
Reader = Annotated[Caller, requires(Permission.USER_READ)]
Manager = Annotated[Caller, requires(Permission.USER_MANAGE)]


@router.get("", response_model=UsersPublic)
def list_users(
    ctx: ContextDep,
    _caller: Reader,
    role: Role | None = None,
    is_active: Annotated[bool | None, Query(description="false: disabled accounts")] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> UsersPublic:
    """Users, newest first, with their role, whether they are active, and their last
    login. Disable or enable one, or change their role, with PATCH."""
    accounts, count = users.list_accounts(ctx, role, is_active, limit, offset)
    return UsersPublic(data=[user_account_public(a) for a in accounts], count=count)


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(ctx: ContextDep, caller: Manager, body: UserCreate) -> UserPublic:
    row = users.create_user(ctx, caller, body.email, body.password, body.role, body.username)
    return user_public(row)


@router.get("/{user_id}", response_model=UserAccountPublic)
def get_user(ctx: ContextDep, _caller: Reader, user_id: str) -> UserAccountPublic:
    return user_account_public(users.get_account(ctx, user_id))


@router.patch("/{user_id}", response_model=UserPublic)
def update_user(ctx: ContextDep, caller: Manager, user_id: str, body: UserUpdate) -> UserPublic:
    changes = users.UserChanges(**body.model_dump())
    return user_public(users.update_user(ctx, caller, user_id, changes))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(ctx: ContextDep, caller: Manager, user_id: str) -> Response:
    users.delete_user(ctx, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
