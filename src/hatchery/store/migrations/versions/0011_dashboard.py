"""The dashboard: passwords, sessions, invites, and API keys' names and last use

An account signs in to the dashboard with its email and a password (``accounts.password_hash``,
argon2). ``dashboard_sessions`` holds a signed-in browser's session (by the SHA-256 of its
cookie's token, never the token) with the CSRF token its forms carry; ``dashboard_invites`` the
one-time links an operator prints to let an account set its password. An API key gains the name
it was made with and when it was last used (written at most once a minute per key and process).

On PostgreSQL, migration 0007's trigger announced every update of a key; it now announces only
the changes that matter to authentication, so that recording a key's use does not empty every
process's key cache.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hatchery.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

KEY_TRIGGER = (
    "CREATE TRIGGER api_keys_notify AFTER UPDATE {columns}OR DELETE ON api_keys "
    "FOR EACH ROW EXECUTE FUNCTION hatchery_notify_key()"
)
AUTH_COLUMNS = "OF account_id, prefix, key_hash, expires_at, revoked_at "


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite 3.35 adds and drops such columns in place): a
    # batch copy of accounts would drop the table that every other table refers to.
    op.add_column("accounts", sa.Column("password_hash", sa.String(256), nullable=True))
    op.add_column("api_keys", sa.Column("name", sa.String(128), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", UTCDateTime, nullable=True))
    op.create_index("ix_api_keys_account_id_created_at", "api_keys", ["account_id", "created_at"])
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("user_agent", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_dashboard_sessions_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_sessions"),
    )
    op.create_index("ix_dashboard_sessions_account_id", "dashboard_sessions", ["account_id"])
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "dashboard_invites",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_dashboard_invites_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_invites"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_keys_notify ON api_keys")
        op.execute(KEY_TRIGGER.format(columns=AUTH_COLUMNS))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_keys_notify ON api_keys")
        op.execute(KEY_TRIGGER.format(columns=""))
    op.drop_table("dashboard_invites")
    op.drop_index("ix_dashboard_sessions_expires_at", "dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_account_id", "dashboard_sessions")
    op.drop_table("dashboard_sessions")
    op.drop_index("ix_api_keys_account_id_created_at", "api_keys")
    for table, column in (
        ("api_keys", "last_used_at"),
        ("api_keys", "name"),
        ("accounts", "password_hash"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
