"""Login, registration, session and current-user schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from gpuyard.api.schemas.common import RequestModel
from gpuyard.domain.emails import InvalidEmail, normalise_email


def _email(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidEmail as exc:
        raise PydanticCustomError("email", "{reason}", {"reason": str(exc)}) from None


#: An address that names an account (domain/emails.py): validated, and replaced by its
#: normal form (lower case, IDNA domain).
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=320,
        examples=["dev@example.com"],
        json_schema_extra={"format": "email"},
    ),
    AfterValidator(_email),
]
NewPassword = Annotated[
    str, Field(min_length=8, max_length=1024, description="8 characters or more")
]
Username = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
]


class LoginRequest(RequestModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    set_cookie: bool = Field(
        default=False,
        description="dashboard login: put the session in an httpOnly cookie (plus a CSRF "
        "cookie) instead of returning the token",
    )


class RegisterRequest(RequestModel):
    email: Email
    password: NewPassword
    invite_code: str = Field(min_length=1, max_length=128)
    username: Username | None = None


class UserPublic(BaseModel):
    id: str
    email: str
    username: str | None
    role: str
    is_active: bool
    created_at: datetime


class TeamMembershipPublic(BaseModel):
    team_id: str
    team_name: str
    is_team_admin: bool
    max_priority: int | None = Field(
        description="the highest priority the team's work may ask for; null: no team cap"
    )


class CurrentUserPublic(UserPublic):
    teams: list[TeamMembershipPublic]
    max_priority: int = Field(
        description="the highest priority your role may ask for (a team may cap it lower)"
    )


class TokenPublic(BaseModel):
    access_token: str | None = Field(description="the JWT; null when it was set as a cookie")
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 scheme name, not a secret
    expires_at: datetime
    csrf_token: str | None = Field(
        default=None, description="cookie sessions: send it back in X-CSRF-Token"
    )
    user: UserPublic
