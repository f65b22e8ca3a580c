"""Traces: the W3C trace context of the request that queued a task, and of the transaction that
wrote a webhook message, so that the worker's spans and the delivery's join the same trace.
Empty unless tracing is on (``HATCHERY_OTLP_ENDPOINT``).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("trace_context", sa.String(64), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("trace_context", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "trace_context")
    op.drop_column("tasks", "trace_context")
