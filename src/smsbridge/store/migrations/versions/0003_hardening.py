"""NUL-safe text on PostgreSQL, scoped idempotency keys, unique live key names, a meta table.

Revision ID: 0003
Revises: 0002
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Free-text columns that PostgreSQL now stores escaped (see smsbridge.store.schema.escape_nul).
ESCAPED_COLUMNS = (
    ("messages", "text"),
    ("messages", "error_reason"),
    ("webhook_deliveries", "last_error"),
    ("early_receipts", "error_reason"),
)
# An escaped NUL: backslash-0 after an even run of backslashes (each pair is one backslash).
ESCAPED_NUL = r"(^|[^\\])(\\\\)*\\0"
# Names SQLite's unnamed UNIQUE constraints so that batch mode can drop one.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    """Escape stored texts, scope idempotency keys, make live key names unique, add meta."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        # Backslashes written before now must read back as themselves: double them.
        for table, column in ESCAPED_COLUMNS:
            op.execute(f"UPDATE {table} SET {column} = replace({column}, chr(92), chr(92) || "
                       f"chr(92)) WHERE strpos({column}, chr(92)) > 0")

    # Keys stored before now had no scope, so they are no longer matched by any request.
    unique_keys = [c["name"] for c in sa.inspect(bind).get_unique_constraints("messages")
                   if c["column_names"] == ["idempotency_key"]]
    if postgres:
        for named in filter(None, unique_keys):
            op.drop_constraint(named, "messages", type_="unique")
        op.add_column("messages", sa.Column("idempotency_scope", sa.String(64)))
        op.add_column("messages", sa.Column("idempotency_fingerprint", sa.String(64)))
    else:
        with op.batch_alter_table("messages", naming_convention=SQLITE_NAMES) as batch:
            for name in unique_keys:  # unnamed as 0001 made it, named after a downgrade
                batch.drop_constraint(name or "uq_messages_idempotency_key", type_="unique")
            batch.add_column(sa.Column("idempotency_scope", sa.String(64)))
            batch.add_column(sa.Column("idempotency_fingerprint", sa.String(64)))
    op.create_index("ux_messages_idempotency", "messages",
                    ["idempotency_scope", "idempotency_key"], unique=True)

    _rename_duplicate_live_key_names(bind)
    live = sa.text("revoked_at IS NULL")
    op.create_index("ux_api_keys_live_name", "api_keys", ["name"], unique=True,
                    sqlite_where=live, postgresql_where=live)

    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def _rename_duplicate_live_key_names(bind: sa.Connection) -> None:
    # The oldest live key keeps a shared name; later ones get their id appended.
    rows = bind.execute(sa.text(
        "SELECT id, name FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"))
    seen: defaultdict[str, int] = defaultdict(int)
    for key_id, name in rows.fetchall():
        seen[name] += 1
        if seen[name] > 1:
            suffix = f" ({key_id})"
            bind.execute(sa.text("UPDATE api_keys SET name = :name WHERE id = :id"),
                         {"name": name[:100 - len(suffix)] + suffix, "id": key_id})


def downgrade() -> None:
    """Undo 0003; texts holding a NUL keep it escaped, since 0002's schema cannot hold it."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.drop_table("meta")
    op.drop_index("ux_api_keys_live_name", "api_keys")
    op.drop_index("ux_messages_idempotency", "messages")
    # Several scopes may have used one key; only one row per key can keep it.
    op.execute("UPDATE messages SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL "
               "AND seq NOT IN (SELECT min(seq) FROM messages WHERE idempotency_key IS NOT NULL "
               "GROUP BY idempotency_key)")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("idempotency_fingerprint")
        batch.drop_column("idempotency_scope")
        batch.create_unique_constraint("messages_idempotency_key_key", ["idempotency_key"])
    if postgres:
        for table, column in ESCAPED_COLUMNS:
            op.execute(sa.text(
                f"UPDATE {table} SET {column} = replace({column}, chr(92) || chr(92), chr(92)) "
                f"WHERE strpos({column}, chr(92)) > 0 AND {column} !~ :escaped_nul"
            ).bindparams(escaped_nul=ESCAPED_NUL))
