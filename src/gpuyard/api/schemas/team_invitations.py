"""Team invitations: pending ones on a team (for its admins) and one's own (to answer)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TeamInvitationPublic(BaseModel):
    """A user a team admin invited; they become a member when they accept."""

    id: str
    user_id: str
    email: str
    is_team_admin: bool = Field(description="what the user becomes on accepting")
    invited_by: str | None = Field(description="user id of the team admin who invited")
    created_at: datetime
    expires_at: datetime


class MyTeamInvitationPublic(BaseModel):
    """An invitation to the caller: accept or decline it."""

    id: str
    team_id: str
    team_name: str
    is_team_admin: bool
    invited_by_email: str | None
    created_at: datetime
    expires_at: datetime


class MyTeamInvitationsPublic(BaseModel):
    data: list[MyTeamInvitationPublic]
    count: int
