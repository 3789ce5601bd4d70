"""indexes for a ledger that grows: releases (app, env, id), an environment's newest releases and the newest
older one not marked bad (the rollback target) without sorting them all; rollbacks (app, created_at), the
KPIs' window of every environment without reading the app's every rollback

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_releases_app_env_id", "releases", ["app", "env", "id"], unique=False)
    op.create_index("ix_rollbacks_app_created", "rollbacks", ["app", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rollbacks_app_created", table_name="rollbacks")
    op.drop_index("ix_releases_app_env_id", table_name="releases")
