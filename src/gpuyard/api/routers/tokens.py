"""The caller's own API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.identity_converters import api_token_created, api_token_public
from gpuyard.api.schemas.tokens import ApiTokenCreate, ApiTokenCreated, ApiTokensPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.identity import api_tokens

router = APIRouter(prefix="/tokens", tags=["tokens"])
Owner = Annotated[Caller, requires(Permission.TOKEN_MANAGE)]


@router.post("", response_model=ApiTokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(ctx: ContextDep, caller: Owner, body: ApiTokenCreate) -> ApiTokenCreated:
    """The token is in this response only; it is stored as a SHA-256 digest."""
    row, token = api_tokens.create_api_token(ctx, caller, body.name, body.expires_in_days)
    return api_token_created(row, token)


@router.get("", response_model=ApiTokensPublic)
def list_tokens(ctx: ContextDep, caller: Owner) -> ApiTokensPublic:
    rows = api_tokens.list_api_tokens(ctx, caller)
    return ApiTokensPublic(data=[api_token_public(r) for r in rows], count=len(rows))


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(ctx: ContextDep, caller: Owner, token_id: str) -> Response:
    api_tokens.revoke_api_token(ctx, caller, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
