"""The operator's console: admins, routes in the database, the audit log, workers' heartbeats

An account may be an admin (``accounts.role``), granted from the CLI. ``model_routes`` holds each
model's and tool's providers, prices and synchronous flag, seeded from the catalog file and then
changed through the admin API without a restart. ``audit_log`` records every operator action.
``workers`` holds one row per running worker process, written at each heartbeat.

On PostgreSQL a change of routes announces itself on ``hatchery_routes`` (every process reads
them again), and migration 0007's account trigger also announces a change of role (the key
caches forget the account). Elsewhere processes compare the routes' revisions every few seconds.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hatchery.store.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ACCOUNT_TRIGGER = (
    "CREATE TRIGGER accounts_notify_access AFTER UPDATE OF {columns} ON accounts "
    "FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION hatchery_notify_account()"
)


def _account_trigger(columns: tuple[str, ...]) -> str:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    return ACCOUNT_TRIGGER.format(columns=", ".join(columns), changed=changed)


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("role", sa.String(16), nullable=False, server_default="user")
    )
    op.create_table(
        "model_routes",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=True),
        sa.PrimaryKeyConstraint("kind", "name", name="pk_model_routes"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("via", sa.String(40), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_target_seq", "audit_log", ["target", "seq"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("running", sa.Integer, nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("providers", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION hatchery_notify_routes() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN PERFORM pg_notify('hatchery_routes', ''); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER model_routes_notify AFTER INSERT OR UPDATE OR DELETE ON model_routes "
            "FOR EACH STATEMENT EXECUTE FUNCTION hatchery_notify_routes()"
        )
        op.execute("DROP TRIGGER IF EXISTS accounts_notify_access ON accounts")
        op.execute(_account_trigger(("status", "rate_limit", "role")))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS accounts_notify_access ON accounts")
        op.execute(_account_trigger(("status", "rate_limit")))
        op.execute("DROP TRIGGER IF EXISTS model_routes_notify ON model_routes")
        op.execute("DROP FUNCTION IF EXISTS hatchery_notify_routes()")
    op.drop_table("workers")
    op.drop_index("ix_audit_log_target_seq", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("model_routes")
    op.execute("ALTER TABLE accounts DROP COLUMN role")
