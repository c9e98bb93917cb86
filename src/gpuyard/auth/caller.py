"""Who is making a request, as services see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gpuyard.auth.roles import Role


class CredentialKind(StrEnum):
    SESSION = "session"  # a JWT from POST /auth/login
    API_TOKEN = "api_token"  # noqa: S105 - a gpy_... token from POST /tokens
    #: The routing host's gpuyard_route cookie (auth/route_tokens.py): routes only.
    ROUTE = "route"


@dataclass(frozen=True)
class Credential:
    """What authenticated the request: needed to log out (revoke that very session)."""

    kind: CredentialKind
    id: str  # the JWT's jti, or the API token's id
    expires_at: datetime | None


@dataclass(frozen=True)
class Caller:
    user_id: str
    email: str
    role: Role
    ip: str | None = None
    credential: Credential | None = None
