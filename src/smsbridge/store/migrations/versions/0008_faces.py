"""The Twilio-compatible face: each account's auth token, and a message's StatusCallback.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add accounts.auth_token (a Fernet token) and messages.status_callback."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("auth_token", sa.Text))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("status_callback", sa.Text))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("status_callback")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("auth_token")
