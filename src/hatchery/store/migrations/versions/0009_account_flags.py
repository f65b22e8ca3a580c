"""Account flags: what the operator allows an account beyond the default (``no-watermark``)

A change of flags is announced to every process's key cache on PostgreSQL, as a change of status
or rate limit is (0007).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TRIGGER = (
    "CREATE TRIGGER accounts_notify_access AFTER UPDATE OF status, rate_limit{flags} ON accounts "
    "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status "
    "OR OLD.rate_limit IS DISTINCT FROM NEW.rate_limit{flags_changed}) "
    "EXECUTE FUNCTION hatchery_notify_account()"
)


def _trigger(with_flags: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS accounts_notify_access ON accounts")
    op.execute(
        TRIGGER.format(
            flags=", flags" if with_flags else "",
            flags_changed=" OR OLD.flags IS DISTINCT FROM NEW.flags" if with_flags else "",
        )
    )


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("flags", sa.String(length=256), nullable=False, server_default="")
        )
    _trigger(with_flags=True)


def downgrade() -> None:
    _trigger(with_flags=False)
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("flags")
