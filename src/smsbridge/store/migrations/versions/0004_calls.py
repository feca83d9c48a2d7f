"""Voice calls in the messages table: a kind, and a call's voice, language and repeat count.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Carriers' voice and language names are short (smsbridge.store.base.MAX_VOICE_CHARS).
VOICE_CHARS = 64


def upgrade() -> None:
    """Add kind (every existing row is a message), voice, language and repeat."""
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False,
                                   server_default="message"))
        batch.add_column(sa.Column("voice", sa.String(VOICE_CHARS)))
        batch.add_column(sa.Column("language", sa.String(VOICE_CHARS)))
        batch.add_column(sa.Column("repeat", sa.Integer))


def downgrade() -> None:
    """Drop the call rows and the call columns."""
    op.execute("DELETE FROM messages WHERE kind <> 'message'")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("repeat")
        batch.drop_column("language")
        batch.drop_column("voice")
        batch.drop_column("kind")
