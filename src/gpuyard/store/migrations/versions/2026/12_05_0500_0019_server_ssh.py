"""host SSH: per-server SSH settings, the private key encrypted, the pinned host key

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-05 05:00:00

- ``server_ssh``: one row per server (removed with it): host, port, user name, the
  private key encrypted at rest with its type and fingerprint, and the host key pinned at
  the first successful connection (issue 19).
- ``servers.agent_tls_cert``: an agent's own TLS certificate (PEM), pinned when it was
  registered over HTTPS (``gpuyard agent install`` makes a self-signed one).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy: that would drop the change-mark triggers of 0005).
    op.add_column("servers", sa.Column("agent_tls_cert", sa.Text(), nullable=True))
    op.create_table(
        "server_ssh",
        sa.Column("server_id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("private_key_enc", sa.Text(), nullable=False),
        sa.Column("key_type", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=128), nullable=False),
        sa.Column("host_key", sa.Text(), nullable=True),
        sa.Column("host_key_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("host_key_pinned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name=op.f("ck_server_ssh_port_range")),
        sa.CheckConstraint(
            "(host_key IS NULL) = (host_key_fingerprint IS NULL)",
            name=op.f("ck_server_ssh_host_key_whole"),
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_server_ssh_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_server_ssh")),
    )


def downgrade() -> None:
    op.drop_table("server_ssh")
    op.drop_column("servers", "agent_tls_cert")
