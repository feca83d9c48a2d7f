"""The opt-out (suppression) list: pairs of a sending number and a recipient sent nothing.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# smsbridge.store.base.MAX_NUMBER_CHARS
NUMBER_CHARS = 32


def upgrade() -> None:
    """Create the optouts table, one row per (sending number, recipient)."""
    op.create_table(
        "optouts",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("from_number", sa.String(NUMBER_CHARS), nullable=False),
        sa.Column("to_number", sa.String(NUMBER_CHARS), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ux_optouts_pair", "optouts", ["from_number", "to_number"], unique=True)


def downgrade() -> None:
    """Drop the optouts table (and with it the list)."""
    op.drop_index("ux_optouts_pair", table_name="optouts")
    op.drop_table("optouts")
