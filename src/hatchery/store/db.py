"""The connector: one engine, the driver path beside it (``store.driver``), and the only place that
knows SQLite from PostgreSQL at connect time. SQLite runs in WAL mode with a busy timeout, and
write transactions begin IMMEDIATE so a transaction that will write takes the write lock up front
instead of failing with "database is locked" half-way through. PostgreSQL runs through asyncpg
with a connection pool; ``postgresql://`` and ``postgres://`` URLs mean asyncpg.

The engine (SQLAlchemy) serves the schema, the migrations and the cold paths; the hot statements
run on ``Database.driver``, which shares the engine's URL and, on SQLite, its write turn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hatchery.errors import StoreUnavailable
from hatchery.observe import metrics
from hatchery.store.driver import Driver, PgDriver, SqliteDriver

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "hatchery_write"
MIGRATION_LOCK = 0x6861746368  # pg_advisory_xact_lock key: one `db upgrade` at a time
# The database being down, locked past the busy timeout, or out of pooled connections.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError)


def utcnow() -> datetime:
    return datetime.now(UTC)


def equal_to(table: sa.Table, **values: Any) -> list[sa.ColumnElement[bool]]:
    """A filter's conditions: each column of ``table`` named equal to its value, those without
    a value (None or empty) left out."""
    return [table.c[name] == value for name, value in values.items() if value]


def skip_locked(query: sa.Select[Any], dialect: str) -> sa.Select[Any]:
    """The one dialect-specific piece of claiming: on PostgreSQL concurrent claimers skip the rows
    another transaction holds; SQLite needs nothing, as its write transactions (BEGIN IMMEDIATE)
    already run one at a time."""
    return query.with_for_update(skip_locked=True) if dialect == "postgresql" else query


def insert_adding(table: sa.Table, dialect: str, sums: tuple[str, ...]) -> sa.Insert:
    """An INSERT that, where a row with the same primary key exists, adds the new row's ``sums``
    columns to it instead (``INSERT ... ON CONFLICT (pk) DO UPDATE``, the same on both)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    query = upsert(table)
    added = {name: table.c[name] + query.excluded[name] for name in sums}
    return query.on_conflict_do_update(index_elements=list(table.primary_key), set_=added)


def insert_ignore(table: sa.Table, dialect: str) -> sa.Insert:
    """An INSERT that does nothing when it would violate a unique key (rowcount 0 then)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


class Database:
    """Owns the engine. ``write()`` and ``read()`` hand out a connection inside a transaction.

    Write transactions of one process take turns before they take a connection: one at a time on
    SQLite (which has one writer anyway, so they queue here in order instead of spinning on its
    lock), ``pool_size`` at a time on PostgreSQL (leaving the overflow to reads). A burst of
    thousands of finishing tasks then waits its turn instead of timing out on the pool; lease
    renewals are urgent and skip the queue, so a busy process does not lose its leases. A
    database that cannot be reached or is too busy raises :class:`StoreUnavailable`."""

    def __init__(self, engine: AsyncEngine, writers: int = 1) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writers = asyncio.Semaphore(1 if self.dialect == "sqlite" else writers)
        self.driver = self._driver(writers)

    def _driver(self, size: int) -> Driver:
        url, dialect = self.engine.url, self.engine.dialect
        if self.is_sqlite:
            assert url.database, "the driver path needs an SQLite file"
            return SqliteDriver(url.database, dialect, self._writers, SQLITE_BUSY_TIMEOUT_MS)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PgDriver(dsn, dialect, size)

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10, **engine_options: Any) -> Database:
        parsed = normalize_url(url)
        if parsed.get_backend_name() == "sqlite":
            _ensure_sqlite_dir(parsed.database)
            engine = create_async_engine(parsed, **engine_options)
            _configure_sqlite(engine)
        else:
            engine = create_async_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=pool_size,
                **engine_options,
            )
        return cls(engine, writers=pool_size)

    def listen_dsn(self) -> str | None:
        """The plain DSN a LISTEN connection opens (PostgreSQL); None where there is no such
        thing (SQLite, where every process that writes is the one that listens)."""
        if self.is_sqlite:
            return None
        assert isinstance(self.driver, PgDriver)
        return self.driver.dsn

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction; ``urgent`` ones (renewing leases) do not queue behind the others."""
        turn = contextlib.nullcontext() if urgent else self._writers
        async with turn, _available():
            with metrics.DB_WRITE.time():
                async with self.engine.connect() as conn:
                    await conn.execution_options(**{WRITE_OPTION: True})
                    async with conn.begin():
                        yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with metrics.DB_READ.time():
            async with _available(), self.engine.connect() as conn, conn.begin():
                yield conn

    async def lock_schema(self, conn: AsyncConnection) -> None:
        """Serialise schema changes across processes (PostgreSQL; SQLite's write lock does it)."""
        await self.lock(conn, MIGRATION_LOCK)

    async def lock(self, conn: AsyncConnection, key: int) -> None:
        """Hold the lock ``key`` until the transaction ends: write transactions that take it run
        one at a time (PostgreSQL's advisory lock; SQLite's write lock already does it)."""
        if not self.is_sqlite:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.driver.close()
        await self.engine.dispose()


@asynccontextmanager
async def _available() -> AsyncIterator[None]:
    try:
        yield
    except UNAVAILABLE as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        raise StoreUnavailable(
            f"The database is unavailable ({type(exc).__name__}: {reason}); try again"
        ) from exc


def normalize_url(url: str) -> sa.URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def _ensure_sqlite_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is always DEFERRED).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")  # a 202 survives power loss, not only a crash
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
