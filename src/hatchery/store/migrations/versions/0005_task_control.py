"""Task control: cancelled counts, task events, idempotency keys, per-account rate limits

``task_events`` records each status change after the submit, in the transition's transaction (the
tasks already past pending get one event for their current status); on
PostgreSQL a trigger announces each one on ``hatchery_task_events`` (the task id as payload), so an
event stream or a waiting request in any API process wakes when the change commits. The channel
name is that of ``hatchery.store.notify.PG_CHANNELS`` (written out here, as a migration must not
change when the code does).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hatchery.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("task_counts") as batch:
        batch.add_column(
            sa.Column("cancelled", sa.BigInteger(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("rate_limit", sa.String(length=64), nullable=True))
    op.create_table(
        "task_events",
        sa.Column("seq", BigId, autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_task_events")),
    )
    op.create_index(op.f("ix_task_events_task_id_seq"), "task_events", ["task_id", "seq"])
    # A task that has moved since its submit gets the event of its current status, so that a
    # task's latest event is always its status.
    op.execute(
        "INSERT INTO task_events (task_id, status, at) "
        "SELECT id, status, COALESCE(completed_at, started_at, created_at) FROM tasks "
        "WHERE status <> 'pending' ORDER BY seq"
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_idempotency_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION hatchery_notify_task_events() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN PERFORM pg_notify('hatchery_task_events', NEW.task_id); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER task_events_notify AFTER INSERT ON task_events "
            "FOR EACH ROW EXECUTE FUNCTION hatchery_notify_task_events()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS task_events_notify ON task_events")
        op.execute("DROP FUNCTION IF EXISTS hatchery_notify_task_events()")
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_task_events_task_id_seq"), table_name="task_events")
    op.drop_table("task_events")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("rate_limit")
    with op.batch_alter_table("task_counts") as batch:
        batch.drop_column("cancelled")
