"""usage_samples and usage_readings: the utilisation/allocation history (issue 15)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_samples",
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("bucket_s", sa.Integer(), nullable=False),
        sa.Column("t", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("series", "bucket_s", "t", name=op.f("pk_usage_samples")),
    )
    op.create_index("ix_usage_samples_bucket_s_t", "usage_samples", ["bucket_s", "t"])
    op.create_table(
        "usage_readings",
        sa.Column("server_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_used_pct", sa.Double(), nullable=True),
        sa.Column("ram_used_pct", sa.Double(), nullable=True),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_usage_readings_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_usage_readings")),
    )


def downgrade() -> None:
    op.drop_table("usage_readings")
    op.drop_index("ix_usage_samples_bucket_s_t", table_name="usage_samples")
    op.drop_table("usage_samples")
