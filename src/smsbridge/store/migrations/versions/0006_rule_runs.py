"""What each inbound rule did with a message: matches, refused senders, replies, forwards.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# smsbridge.store.base.MAX_NUMBER_CHARS: a reply goes back to whatever sent the message.
NUMBER_CHARS = 32


def upgrade() -> None:
    """Create rule_runs, one row per rule and action on a message."""
    op.create_table(
        "rule_runs",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("target", sa.String(NUMBER_CHARS), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("captures", sa.Text),
        sa.Column("outbound_message_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ux_rule_runs_action", "rule_runs",
                    ["message_id", "rule", "action", "target"], unique=True)


def downgrade() -> None:
    """Drop rule_runs."""
    op.drop_table("rule_runs")
