"""Accounts (tenants): keys, messages, deliveries and opt-outs belong to one; connections and
app webhooks added at run time.

Everything stored before this revision belongs to the default account, made here; the keys
made before it could do everything, so they become its admin keys.

Revision ID: 0007
Revises: 0006
"""

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# smsbridge.store.base.MAX_NUMBER_CHARS
NUMBER_CHARS = 32
ACCOUNT_SCOPED = ("api_keys", "messages", "webhook_deliveries", "optouts")


def upgrade() -> None:
    """Create accounts, connections, connection_numbers, app_webhooks; scope the rest."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "connections",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("numbers", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_connections_account", "connections", ["account_id"])
    op.create_table(
        "connection_numbers",
        sa.Column("number", sa.String(NUMBER_CHARS), primary_key=True),
        sa.Column("connection", sa.String(64), nullable=False),
    )
    op.create_index("ix_connection_numbers_connection", "connection_numbers", ["connection"])
    op.create_table(
        "app_webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("format", sa.String(16), nullable=False, server_default="standard"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_app_webhooks_account", "app_webhooks", ["account_id"])
    for table in ACCOUNT_SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_id", sa.String(40)))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("admin", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("webhook_id", sa.String(40)))

    default_id = f"acc_{uuid.uuid4().hex}"
    now = time.time()
    op.execute(sa.table("accounts", sa.column("id"), sa.column("name"), sa.column("created_at"))
               .insert().values(id=default_id, name="default", created_at=now))
    meta = sa.table("meta", sa.column("key"), sa.column("value"), sa.column("updated_at"))
    op.execute(meta.insert().values(key="default_account", value=default_id, updated_at=now))
    for table in ACCOUNT_SCOPED:
        op.execute(sa.table(table, sa.column("account_id")).update()
                   .values(account_id=default_id))
    op.execute(sa.table("api_keys", sa.column("admin", sa.Boolean)).update().values(admin=True))
    op.create_index("ix_messages_account", "messages", ["account_id", "seq"])
    op.create_index("ix_optouts_account", "optouts", ["account_id"])
    op.create_index("ix_deliveries_account", "webhook_deliveries", ["account_id"])
    op.create_index("ix_api_keys_account", "api_keys", ["account_id"])
    # Key names are unique within an account now, not across the gateway.
    live = sa.text("revoked_at IS NULL")
    op.drop_index("ux_api_keys_live_name", "api_keys")
    op.create_index("ux_api_keys_live_name", "api_keys", ["account_id", "name"], unique=True,
                    sqlite_where=live, postgresql_where=live)


def downgrade() -> None:
    """Back to one flat world: drop what accounts added."""
    live = sa.text("revoked_at IS NULL")
    op.drop_index("ux_api_keys_live_name", "api_keys")
    op.create_index("ux_api_keys_live_name", "api_keys", ["name"], unique=True,
                    sqlite_where=live, postgresql_where=live)
    op.drop_index("ix_api_keys_account", "api_keys")
    op.drop_index("ix_deliveries_account", "webhook_deliveries")
    op.drop_index("ix_optouts_account", "optouts")
    op.drop_index("ix_messages_account", "messages")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("webhook_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("admin")
    for table in ACCOUNT_SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account_id")
    op.execute("DELETE FROM meta WHERE key = 'default_account'")
    op.drop_table("app_webhooks")
    op.drop_table("connection_numbers")
    op.drop_table("connections")
    op.drop_table("accounts")
