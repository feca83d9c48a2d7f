"""Keep delivery receipts that arrive before their send is recorded.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create early_receipts."""
    op.create_table(
        "early_receipts",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("carrier_message_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_reason", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_early_receipts_carrier_id", "early_receipts", ["carrier_message_id"])


def downgrade() -> None:
    """Drop early_receipts."""
    op.drop_table("early_receipts")
