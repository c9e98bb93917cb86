"""Users and teams."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
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

    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'user')", name="role"),)


class TeamRow(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Quota: a cap on concurrently allocated resources; NULL = unlimited.
    quota_cpu_milli: Mapped[int | None]
    quota_ram_mib: Mapped[int | None]
    quota_gpu_milli: Mapped[int | None]
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
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    is_team_admin: Mapped[bool] = mapped_column(default=False)
