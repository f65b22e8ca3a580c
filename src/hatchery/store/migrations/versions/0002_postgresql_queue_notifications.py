"""PostgreSQL: announce queue changes with NOTIFY

Triggers send ``pg_notify`` when a task becomes pending (submitted, or given back to the queue) and
when a webhook delivery is written, inside the writing transaction, so idle workers on any host
wake when the change commits. The channel names are those of ``hatchery.store.notify.PG_CHANNELS``
(written out here, as a migration must not change when the code does). SQLite has no NOTIFY: there
the one process that writes also wakes its own workers, and this revision changes nothing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FUNCTIONS = {
    "hatchery_notify_tasks": "hatchery_tasks",
    "hatchery_notify_webhooks": "hatchery_webhooks",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function, channel in FUNCTIONS.items():
        op.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$"
        )
    op.execute(
        "CREATE TRIGGER tasks_notify_pending AFTER INSERT OR UPDATE OF status ON tasks "
        "FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION hatchery_notify_tasks()"
    )
    op.execute(
        "CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries "
        "FOR EACH ROW EXECUTE FUNCTION hatchery_notify_webhooks()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS webhook_deliveries_notify ON webhook_deliveries")
    op.execute("DROP TRIGGER IF EXISTS tasks_notify_pending ON tasks")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
