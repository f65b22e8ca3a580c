"""Schema migrations: apply them, and tell whether a database is behind."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hatchery.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def history() -> list[str]:
    """Every revision, newest first."""
    return [r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions()]


def is_known(revision: str) -> bool:
    """Whether ``revision`` is one of ours (an older Hatchery meeting a newer schema: not)."""
    return revision in history()


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(connection: sa.Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with db.write() as conn:
        await db.lock_schema(conn)
        await conn.run_sync(run)


async def is_current(db: Database) -> bool:
    return await current_revision(db) == head_revision()
