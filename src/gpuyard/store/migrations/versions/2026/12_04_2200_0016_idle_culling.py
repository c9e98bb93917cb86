"""idle culling and maximum lifetime: policies, the culling loop's memory, max_lifetime_s

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 22:00:00

- ``culling_policies``: per team (removed with it) or per image type (issue 19).
- ``workload_culling``: per running workload, what the culling loop saw and announced
  (when it became idle, the warning, when it will be stopped), so a restart loses
  nothing; its own table, so the loop never bumps a workload's version or change mark.
- ``workloads.max_lifetime_s``: opted in at submit (NULL: none). A plain ADD COLUMN (no
  batch copy: that would drop the change-mark triggers of 0005); the bounds are the
  API's (``domain/culling.py``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "culling_policies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("image_type", sa.String(length=32), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("threshold_pct", sa.Double(), nullable=True),
        sa.Column("window_s", sa.Integer(), nullable=True),
        sa.Column("max_lifetime_s", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(team_id IS NULL) <> (image_type IS NULL)",
            name=op.f("ck_culling_policies_one_subject"),
        ),
        sa.CheckConstraint(
            "mode IS NULL OR mode IN ('on', 'off', 'never')", name=op.f("ck_culling_policies_mode")
        ),
        sa.CheckConstraint(
            "threshold_pct IS NULL OR (threshold_pct >= 0 AND threshold_pct <= 100)",
            name=op.f("ck_culling_policies_threshold_range"),
        ),
        sa.CheckConstraint(
            "window_s IS NULL OR window_s > 0", name=op.f("ck_culling_policies_window_positive")
        ),
        sa.CheckConstraint(
            "max_lifetime_s IS NULL OR max_lifetime_s > 0",
            name=op.f("ck_culling_policies_lifetime_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_culling_policies_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_culling_policies")),
        sa.UniqueConstraint("image_type", name=op.f("uq_culling_policies_image_type")),
        sa.UniqueConstraint("team_id", name=op.f("uq_culling_policies_team_id")),
    )
    op.create_table(
        "workload_culling",
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idle_peak_pct", sa.Double(), nullable=True),
        sa.Column("idle_warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idle_stop_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifetime_warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifetime_stop_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsupported_noted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cpu_seconds", sa.Double(), nullable=True),
        sa.Column("cpu_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_workload_culling_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workload_id", name=op.f("pk_workload_culling")),
    )
    op.add_column("workloads", sa.Column("max_lifetime_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("workloads", "max_lifetime_s")
    op.drop_table("workload_culling")
    op.drop_table("culling_policies")
