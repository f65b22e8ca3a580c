"""Usage: usage records and their daily sums, image edits, the submitting API key

``usage_records`` says what each charge was for, one record per charged task, written in the
charge's transaction; ``usage_daily`` sums them per account, UTC day, model, type and API key (and
over all keys, as ``*``), so that a usage summary reads a few rows. Tasks gain the submitting key's
prefix (``api_key``) and the number of price units of their quote (``units``); ``task_counts`` is
counted per type as well, and image tasks with reference images become ``image_edit``. Tasks
completed before this revision get their usage record here (with no API key: it was not recorded
then).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hatchery.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Per dialect: a JSON field of tasks.params as an integer, whether image_urls is a non-empty
# list, and a timestamp's UTC day as text.
SQLITE = {
    "int": "CAST(json_extract(params, '$.{0}') AS INTEGER)",
    "text": "json_extract(params, '$.{0}')",
    "edit": "COALESCE(json_array_length(params, '$.image_urls'), 0) > 0",
    "day": "substr({0}, 1, 10)",
}
POSTGRESQL = {
    "int": "(params->>'{0}')::bigint",
    "text": "(params->>'{0}')",
    "edit": "(CASE WHEN json_typeof(params->'image_urls') = 'array' "
    "THEN json_array_length(params->'image_urls') ELSE 0 END) > 0",
    "day": "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


def upgrade() -> None:
    sql = POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE
    _tasks(sql)
    _task_counts()
    _usage_records(sql)
    _usage_daily(sql)


def _tasks(sql: dict[str, str]) -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("api_key", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("units", sa.BigInteger(), server_default="1", nullable=False))
    outputs, seconds = sql["int"].format("num_outputs"), sql["int"].format("duration")
    op.execute(
        f"UPDATE tasks SET units = CASE WHEN type = 'video_generate' "
        f"THEN {outputs} * {seconds} ELSE {outputs} END"
    )
    op.execute(
        f"UPDATE tasks SET type = 'image_edit' WHERE type = 'image_generate' AND {sql['edit']}"
    )


def _task_counts(by_type: bool = True) -> None:
    """``task_counts`` anew, per account and model (and type), counted from the tasks."""
    op.drop_table("task_counts")
    keys = ["account_id", "model", *(["type"] if by_type else [])]
    op.create_table(
        "task_counts",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        *([sa.Column("type", sa.String(length=32), nullable=False)] if by_type else []),
        sa.Column("total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cancelled", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_task_counts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint(*keys, name=op.f("pk_task_counts")),
    )
    columns = ", ".join(keys)
    op.execute(
        f"INSERT INTO task_counts ({columns}, total, completed, failed, cancelled) "
        f"SELECT {columns}, COUNT(*), "
        "SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) "
        f"FROM tasks GROUP BY {columns}"
    )


def _usage_records(sql: dict[str, str]) -> None:
    op.create_table(
        "usage_records",
        sa.Column("seq", BigId, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("api_key", sa.String(length=32), nullable=True),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("unit_price_micros", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("resolution", sa.String(length=8), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_records_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_usage_records")),
        sa.UniqueConstraint("id", name=op.f("uq_usage_records_id")),
        sa.UniqueConstraint("task_id", name=op.f("uq_usage_records_task_id")),
    )
    op.create_index(op.f("ix_usage_records_account_id_seq"), "usage_records", ["account_id", "seq"])
    op.create_index(
        op.f("ix_usage_records_account_id_created_at"),
        "usage_records",
        ["account_id", "created_at"],
    )
    # Every task charged before this revision, in the order it completed.
    op.execute(
        "INSERT INTO usage_records (id, account_id, task_id, model, type, api_key, units, unit, "
        "unit_price_micros, cost_micros, resolution, created_at) "
        "SELECT 'usage_' || substr(id, 5), account_id, id, model, type, NULL, units, "
        "CASE WHEN type = 'video_generate' THEN 'second' ELSE 'image' END, "
        f"price_micros / units, cost_micros, {sql['text'].format('resolution')}, "
        "COALESCE(completed_at, created_at) "
        "FROM tasks WHERE status = 'completed' ORDER BY completed_at, seq"
    )


def _usage_daily(sql: dict[str, str]) -> None:
    op.create_table(
        "usage_daily",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("api_key", sa.String(length=32), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_daily_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "day", "model", "type", "api_key", name=op.f("pk_usage_daily")
        ),
    )
    op.create_index(
        op.f("ix_usage_daily_account_id_api_key_day"),
        "usage_daily",
        ["account_id", "api_key", "day"],
    )
    day = sql["day"].format("created_at")
    for key in ("", "*"):  # the records had no key; and the sums over all keys
        op.execute(
            "INSERT INTO usage_daily (account_id, day, model, type, api_key, units, cost_micros, "
            f"requests) SELECT account_id, {day}, model, type, '{key}', SUM(units), "
            f"SUM(cost_micros), COUNT(*) FROM usage_records GROUP BY account_id, {day}, model, type"
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_daily_account_id_api_key_day"), table_name="usage_daily")
    op.drop_table("usage_daily")
    op.drop_index(op.f("ix_usage_records_account_id_created_at"), table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_account_id_seq"), table_name="usage_records")
    op.drop_table("usage_records")
    op.execute("UPDATE tasks SET type = 'image_generate' WHERE type = 'image_edit'")
    _task_counts(by_type=False)
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("units")
        batch.drop_column("api_key")
