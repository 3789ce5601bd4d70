"""indexes for the server's reads: events (app, id), the newest entries of one app; rollbacks (app, env,
created_at), an environment's newest rollbacks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_app_id", "events", ["app", "id"], unique=False)
    op.create_index("ix_rollbacks_app_env_created", "rollbacks", ["app", "env", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rollbacks_app_env_created", table_name="rollbacks")
    op.drop_index("ix_events_app_id", table_name="events")
