"""guard_periods and guard_watches: each guard period judged once across replicas, each guard's health shared

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guard_periods",
        sa.Column("app", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=128), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=256), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("app", "env", "release_id", "period_end"),
    )
    op.create_table(
        "guard_watches",
        sa.Column("app", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=128), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("health", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app", "env"),
    )


def downgrade() -> None:
    op.drop_table("guard_watches")
    op.drop_table("guard_periods")
