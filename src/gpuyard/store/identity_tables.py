"""Users, teams, team membership and invites."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base, new_id, utcnow


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set when the password changes or is reset: login sessions issued before it are
    #: refused, so a changed password ends every existing session (migration 0006).
    credentials_changed_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'user')", name="role"),)


class TeamRow(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Quota: a cap on concurrently allocated resources; NULL = unlimited.
    quota_cpu_milli: Mapped[int | None]
    quota_ram_mib: Mapped[int | None]
    quota_gpu_milli: Mapped[int | None]
    # The highest priority the team's work may ask for (domain/priority.py); NULL = the
    # submitter's role's cap alone.
    max_priority: Mapped[int | None]
    # Hierarchical quotas (scheduler/fairshare.py): the department above (two levels at
    # most), the guarantee lent while idle and reclaimed by preemption, and the weight of
    # the team's claim on idle capacity.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    guarantee_cpu_milli: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    guarantee_ram_mib: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    guarantee_storage_mib: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    guarantee_gpu_milli: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    quota_weight: Mapped[int] = mapped_column(default=1, server_default="1")
    #: Per-GPU-model guarantees (migration 0023): {model as written: milli-GPUs}, a part
    #: of ``guarantee_gpu_milli`` reclaimed for work pinned to that model.
    guarantee_gpu_models: Mapped[dict[str, int]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    #: Per-GPU-model limits (migration 0024): {model as written: milli-GPUs}, at most
    #: this much of each model held at once (a department: with its teams).
    limit_gpu_models: Mapped[dict[str, int]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    #: Over-quota weights per resource (migration 0025): {resource: weight} where one
    #: differs from ``quota_weight``, and {model as written: weight} per GPU model.
    quota_weights: Mapped[dict[str, int]] = mapped_column(JSON, default=dict, server_default="{}")
    weight_gpu_models: Mapped[dict[str, int]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    # Members may read (not change) each other's workloads in this team.
    members_can_read: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "(quota_cpu_milli IS NULL OR quota_cpu_milli >= 0) AND "
            "(quota_ram_mib IS NULL OR quota_ram_mib >= 0) AND "
            "(quota_gpu_milli IS NULL OR quota_gpu_milli >= 0)",
            name="quota_non_negative",
        ),
    )


class TeamMemberRow(Base):
    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    is_team_admin: Mapped[bool] = mapped_column(default=False)


class InviteRow(Base):
    """A single-use registration code. Only the code's SHA-256 is stored; the code itself
    is shown once, to the admin who created it."""

    __tablename__ = "invites"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Set once, by a compare-and-set UPDATE ... WHERE used_at IS NULL (single use).
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'user')", name="role"),)


class TeamInvitationRow(Base):
    """An offer to join a team, made by a team admin; membership starts only when the
    invited user accepts it (or a global admin adds the user directly) (migration 0007)."""

    __tablename__ = "team_invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    is_team_admin: Mapped[bool] = mapped_column(default=False)
    invited_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("team_id", "user_id"),)
