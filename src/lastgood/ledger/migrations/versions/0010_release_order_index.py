"""an index on releases (app, env, id): an environment's newest releases, and the newest older one that is not
bad (the rollback target), read without sorting every release of the environment

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_releases_app_env_id", "releases", ["app", "env", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_releases_app_env_id", table_name="releases")
