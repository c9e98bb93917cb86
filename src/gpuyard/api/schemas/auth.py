"""Login and current-user schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import RequestModel


class LoginRequest(RequestModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    id: str
    email: str
    username: str | None
    role: str
    created_at: datetime


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 scheme name, not a secret
    expires_at: datetime
    user: UserPublic
