"""escalations: each escalation step, stakeholder update and acknowledgement of a rollback claimed once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("rollback_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("app", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=128), nullable=False),
        sa.Column("claimed_by", sa.String(length=256), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["rollback_id"], ["rollbacks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rollback_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("escalations")
