"""server_events: every server status change, with its reason, as for workloads

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_server_events_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_events")),
    )
    with op.batch_alter_table("server_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_server_events_server_id"), ["server_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("server_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_events_server_id"))
    op.drop_table("server_events")
