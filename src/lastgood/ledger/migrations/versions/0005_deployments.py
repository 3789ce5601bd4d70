"""deployments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("app", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=128), nullable=False),
        sa.Column("component", sa.String(length=256), nullable=False),
        sa.Column("from_version", sa.String(length=128), nullable=False),
        sa.Column("to_version", sa.String(length=128), nullable=False),
        sa.Column("release_label", sa.String(length=256), nullable=False),
        sa.Column("previous_release", sa.String(length=256), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("pause_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("requested", sa.String(length=16), nullable=True),
        sa.Column("requested_by", sa.String(length=256), nullable=True),
        sa.Column("started_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rollback_id", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index("ix_deployments_app_env", ["app", "env"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_app_env")
    op.drop_table("deployments")
