"""Webhook endpoints and the outbox they share with per-task webhooks

``webhook_endpoints`` is an account's registry of receivers. The outbox gains what a message to
one of them needs: its ``message_id`` (the ``webhook-id``, shared by an event's rows), its
``endpoint_id``, the ``target`` the per-receiver concurrency cap counts and ``schedule_from``
(redelivery). ``task_id`` becomes ``subject_id``: a message may tell of a task, an execution, a
file or an endpoint. Rows written before keep their id as their message id. An attempt keeps
the first bytes of the receiver's answer. On PostgreSQL, a delivery made due again (a
redelivery) is announced as a new one is.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hatchery.store.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PG_NOTIFY_AGAIN = (
    "CREATE TRIGGER webhook_deliveries_notify_due AFTER UPDATE OF next_attempt_at "
    "ON webhook_deliveries FOR EACH ROW WHEN (NEW.status = 'pending' AND "
    "NEW.lease_owner IS NULL) EXECUTE FUNCTION hatchery_notify_webhooks()"
)


def _origin(url: str) -> str:
    """``https://host:port`` of a URL: what a per-task URL's messages count against (as
    ``hatchery.store.outbox.target_of`` says, at this revision)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


def _backfill(conn: sa.Connection) -> None:
    """Rows written before keep their id as their message id; their receiver is their URL's
    origin."""
    rows = conn.execute(sa.text("SELECT id, url FROM webhook_deliveries")).fetchall()
    update = sa.text(
        "UPDATE webhook_deliveries SET message_id = :id, target = :target WHERE id = :id"
    )
    for delivery_id, url in rows:
        conn.execute(update, {"id": delivery_id, "target": _origin(url)})


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failing_since", UTCDateTime, nullable=True),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_webhook_endpoints_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_webhook_endpoints"),
        sa.UniqueConstraint("id", name="uq_webhook_endpoints_id"),
    )
    op.create_index(
        "ix_webhook_endpoints_account_id_deleted_at",
        "webhook_endpoints",
        ["account_id", "deleted_at"],
    )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("uq_webhook_deliveries_task_id_event", type_="unique")
        batch.alter_column("task_id", new_column_name="subject_id")
        batch.alter_column("event", type_=sa.String(40))
        batch.add_column(sa.Column("message_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("endpoint_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("target", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("schedule_from", sa.Integer, nullable=False, server_default="0"))
    _backfill(op.get_bind())
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("message_id", existing_type=sa.String(40), nullable=False)
        batch.alter_column("target", existing_type=sa.String(2048), nullable=False)
        batch.create_unique_constraint(
            "uq_webhook_deliveries_message_id_target", ["message_id", "target"]
        )
        batch.create_index("ix_webhook_deliveries_lease_expires_at", ["lease_expires_at"])
        batch.create_index("ix_webhook_deliveries_subject_id", ["subject_id"])
        batch.create_index("ix_webhook_deliveries_endpoint_id_seq", ["endpoint_id", "seq"])
        batch.create_index("ix_webhook_deliveries_account_id_seq", ["account_id", "seq"])
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.add_column(sa.Column("response", sa.Text, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_NOTIFY_AGAIN)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS webhook_deliveries_notify_due ON webhook_deliveries")
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.drop_column("response")
    endpoint_rows = "SELECT id FROM webhook_deliveries WHERE endpoint_id IS NOT NULL"
    op.execute(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({endpoint_rows})")
    op.execute("DELETE FROM webhook_deliveries WHERE endpoint_id IS NOT NULL")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_account_id_seq")
        batch.drop_index("ix_webhook_deliveries_endpoint_id_seq")
        batch.drop_index("ix_webhook_deliveries_subject_id")
        batch.drop_index("ix_webhook_deliveries_lease_expires_at")
        batch.drop_constraint("uq_webhook_deliveries_message_id_target", type_="unique")
        batch.drop_column("schedule_from")
        batch.drop_column("target")
        batch.drop_column("endpoint_id")
        batch.drop_column("message_id")
        batch.alter_column("subject_id", new_column_name="task_id")
        batch.alter_column("event", type_=sa.String(32))
    with op.batch_alter_table("webhook_deliveries") as batch:  # once the column has its name
        batch.create_unique_constraint("uq_webhook_deliveries_task_id_event", ["task_id", "event"])
    op.drop_index("ix_webhook_endpoints_account_id_deleted_at", "webhook_endpoints")
    op.drop_table("webhook_endpoints")
