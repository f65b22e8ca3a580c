"""Files: every upload and task output as a record, a job for its renditions, and its search index

The ``files`` table (see ``hatchery.store.tables``), and the full-text index that file search
ranks with: on SQLite an FTS5 table over the display name and description, kept in step by
triggers; on PostgreSQL a GIN index on their ``tsvector`` (``simple`` configuration), and a
trigger that announces a file waiting to be processed on ``hatchery_files``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hatchery.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE files_search USING fts5("
    "display_name, description, content='files', content_rowid='seq', "
    "tokenize='unicode61 remove_diacritics 0')",  # as PostgreSQL's `simple`: accents stay
    "CREATE TRIGGER files_search_insert AFTER INSERT ON files BEGIN "
    "INSERT INTO files_search(rowid, display_name, description) "
    "VALUES (new.seq, new.display_name, new.description); END",
    "CREATE TRIGGER files_search_delete AFTER DELETE ON files BEGIN "
    "INSERT INTO files_search(files_search, rowid, display_name, description) "
    "VALUES ('delete', old.seq, old.display_name, old.description); END",
    "CREATE TRIGGER files_search_update AFTER UPDATE OF display_name, description ON files BEGIN "
    "INSERT INTO files_search(files_search, rowid, display_name, description) "
    "VALUES ('delete', old.seq, old.display_name, old.description); "
    "INSERT INTO files_search(rowid, display_name, description) "
    "VALUES (new.seq, new.display_name, new.description); END",
)
PG_SEARCH = (
    "CREATE INDEX ix_files_search ON files USING gin ("
    "to_tsvector('simple', coalesce(display_name, '') || ' ' || coalesce(description, '')))"
)

PG_NOTIFY = (
    "CREATE FUNCTION hatchery_notify_file() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_notify('hatchery_files', ''); RETURN NULL; END $$",
    "CREATE TRIGGER files_notify AFTER INSERT OR UPDATE OF status ON files "
    "FOR EACH ROW WHEN (NEW.status = 'processing') EXECUTE FUNCTION hatchery_notify_file()",
)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("type", sa.String(8), nullable=True),
        sa.Column("requested_type", sa.String(8), nullable=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(512), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("content_type", sa.String(128), nullable=True),
        sa.Column("bytes", sa.BigInteger, nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("duration_seconds", sa.Float, nullable=True),
        sa.Column("object_key", sa.String(512), nullable=True),
        sa.Column("renditions", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("tool_type", sa.String(40), nullable=True),
        sa.Column("playback_id", sa.String(40), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("archived_at", UTCDateTime, nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_files"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_files_account_id_accounts"
        ),
        sa.UniqueConstraint("id", name="uq_files_id"),
        sa.UniqueConstraint("playback_id", name="uq_files_playback_id"),
    )
    op.create_index("ix_files_account_id_updated_at", "files", ["account_id", "updated_at"])
    op.create_index("ix_files_status_next_attempt_at", "files", ["status", "next_attempt_at"])
    op.create_index("ix_files_expires_at", "files", ["expires_at"])
    op.create_index("ix_files_task_id", "files", ["task_id"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in (PG_SEARCH, *PG_NOTIFY):
            op.execute(statement)
    else:
        for statement in SQLITE_SEARCH:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS files_search")
    op.drop_table("files")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hatchery_notify_file()")
