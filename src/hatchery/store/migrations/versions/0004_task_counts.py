"""task_counts: tasks per account and model, so a list's total does not count the tasks

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_task_counts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "model", name=op.f("pk_task_counts")),
    )
    # The tasks already there, counted once.
    op.execute(
        "INSERT INTO task_counts (account_id, model, total, completed, failed) "
        "SELECT account_id, model, COUNT(*), "
        "SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) "
        "FROM tasks GROUP BY account_id, model"
    )


def downgrade() -> None:
    op.drop_table("task_counts")
