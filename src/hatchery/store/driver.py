"""The driver path: the few statements every request and every task runs (the key lookup, the
reservation and the task insert, the task read, the claim and the finish) executed on the database
driver itself, sqlite3 or asyncpg, instead of through SQLAlchemy's async engine.

The statements are still written in SQLAlchemy Core beside the queries that use them, and compiled
once per dialect by :class:`Statement`: the SQL, the order of its parameters and the conversion of
each value (UTC datetimes, JSON) all come from SQLAlchemy's own types, so a row written here reads
the same through the engine, and the other way round. What remains per call is the driver's work
and one conversion per value.

::

    Driver                 one(), all(): a read, one statement, no explicit transaction
    │                      write(fn): fn(tx) in a transaction; returns once it has committed
    │                      write_one(stmt): one statement that writes, committed on its own
    ├── SqliteDriver       reads run on the event loop: in WAL mode a reader never waits for a
    │                      writer, and an indexed read costs tens of µs (one that finds the file
    │                      locked, which WAL makes rare, goes to a thread with the full timeout).
    │                      Writes go through one writer connection, in groups: the writes that
    │                      arrive while a commit is on its way to disk share the next transaction
    │                      (BEGIN IMMEDIATE, a SAVEPOINT each, one COMMIT: one fsync).
    └── PgDriver           an asyncpg pool; asyncpg prepares each statement once per connection.
                           PostgreSQL groups concurrent commits into one WAL flush by itself.

``fn`` runs on the event loop and must only run statements on ``tx``: it never waits on anything
else. If it raises, its writes are undone and the exception reaches the caller; if the commit
fails, every write of the group gets :class:`~hatchery.errors.StoreUnavailable`, as does any
statement that finds the database down or locked past the busy timeout. A broken constraint is
SQLAlchemy's ``IntegrityError`` on both paths. A caller that is
cancelled before its write has started is left out of the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from hatchery.errors import StoreUnavailable
from hatchery.observe import metrics
from hatchery.store.tables import UTCDateTime

T = TypeVar("T")
Row = dict[str, Any]
Convert = Callable[[Any], Any] | None
GROUP_MAX = 256  # writes that share one SQLite transaction, at most
READ_BUSY_MS = 20  # how long a read on the event loop waits for a lock before going to a thread

log = logging.getLogger("hatchery.store")


class Statement:
    """One Core statement, compiled once per dialect: its SQL, its parameters in order with the
    default values the statement itself carries, and how each value and each column converts."""

    def __init__(
        self,
        query: sa.ClauseElement | Callable[[str], sa.ClauseElement],
        keys: Sequence[str] | None = None,
    ) -> None:
        self._query = query  # or what builds it for a dialect's name (an upsert, say)
        self.keys = list(keys) if keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def query(self, dialect: str) -> sa.ClauseElement:
        return self._query if isinstance(self._query, sa.ClauseElement) else self._query(dialect)

    def on(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            query = self.query(dialect.name)
            compiled = self._compiled[dialect.name] = _Compiled(query, self.keys, dialect)
        return compiled


class _Compiled:
    def __init__(self, query: sa.ClauseElement, keys: list[str] | None, dialect: Dialect) -> None:
        compiled = query.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        names = list(compiled.positiontup or ())
        binds = compiled.binds
        # The values the statement carries itself; a parameter it needs from the call and does
        # not get is a KeyError naming it.
        self._defaults = {n: v for n, v in compiled.params.items() if not binds[n].required}
        self._binds = [(name, _bind_processor(binds[name].type, dialect)) for name in names]
        columns = list(getattr(query, "exported_columns", ()))
        self._names = [column.key for column in columns]
        self._results = [_result_processor(column.type, dialect) for column in columns]
        self._converting: list[tuple[str, Callable[[Any], Any]]] = [
            (n, c) for n, c in zip(self._names, self._results, strict=True) if c is not None
        ]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self._defaults, **params}
        return [values[name] if c is None else c(values[name]) for name, c in self._binds]

    def row(self, raw: Sequence[Any]) -> Row:
        row = dict(zip(self._names, raw, strict=True))
        for name, convert in self._converting:
            value = row[name]
            if value is not None:
                row[name] = convert(value)
        return row


def _bind_processor(type_: Any, dialect: Dialect) -> Convert:
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime):
        return _sqlite_datetime_in
    processor: Convert = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _result_processor(type_: Any, dialect: Dialect) -> Convert:
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime):
        return _sqlite_datetime_out
    processor: Convert = type_.dialect_impl(dialect).result_processor(dialect, None)
    return processor


# SQLite keeps UTC times as SQLAlchemy's text, ``YYYY-MM-DD HH:MM:SS.ffffff``; these two read and
# write exactly that, in C (SQLAlchemy's own processors use a regular expression).
def _sqlite_datetime_in(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_datetime_out(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Reader(Protocol):
    """What reads: the driver itself (no transaction) or a write transaction."""

    async def one(self, stmt: Statement, params: Mapping[str, Any] = ...) -> Row | None: ...

    async def all(self, stmt: Statement, params: Mapping[str, Any] = ...) -> list[Row]: ...


class Tx(Reader, Protocol):
    """The statements of one write transaction."""

    async def execute(self, stmt: Statement, params: Mapping[str, Any] = ...) -> int: ...


class Driver(Reader, Protocol):
    dialect: Dialect

    async def write(self, fn: Callable[[Tx], Awaitable[T]]) -> T: ...

    async def write_one(self, stmt: Statement, params: Mapping[str, Any] = ...) -> Row | None: ...

    async def close(self) -> None: ...


class EngineTx:
    """A transaction of the engine (``Database.write()``) seen as a :class:`Tx`, for the few
    statements both paths run (queueing a webhook in a file's finishing transaction, say)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    async def all(self, stmt: Statement, params: Mapping[str, Any] = {}) -> list[Row]:
        query = cast(sa.Executable, stmt.query(self.conn.dialect.name))
        result = await self.conn.execute(query, dict(params))
        return [dict(row._mapping) for row in result]

    async def execute(self, stmt: Statement, params: Mapping[str, Any] = {}) -> int:
        query = cast(sa.Executable, stmt.query(self.conn.dialect.name))
        rows: int = (await self.conn.execute(query, dict(params))).rowcount
        return rows


# --- SQLite ---------------------------------------------------------------------------------


def sqlite_connect(path: str, busy_ms: int) -> sqlite3.Connection:
    """A connection set up as the engine's are (WAL, FULL sync, foreign keys); we BEGIN
    ourselves. Usable from the event loop and from the writer's thread, one at a time."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    async def one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        compiled = stmt.on(self.dialect)
        with _unavailable():
            raws = _fetch(self.conn, compiled.sql, compiled.args(params), one=True)
        return compiled.row(raws[0]) if raws else None

    async def all(self, stmt: Statement, params: Mapping[str, Any] = {}) -> list[Row]:
        compiled = stmt.on(self.dialect)
        with _unavailable():
            raws = _fetch(self.conn, compiled.sql, compiled.args(params), one=False)
        return [compiled.row(raw) for raw in raws]

    async def execute(self, stmt: Statement, params: Mapping[str, Any] = {}) -> int:
        compiled = stmt.on(self.dialect)
        with _unavailable():
            return self.conn.execute(compiled.sql, compiled.args(params)).rowcount


_Job = tuple[Callable[[Tx], Awaitable[Any]], "asyncio.Future[Any]"]


class SqliteDriver:
    """See the module docstring. ``turn`` is the process's write turn, shared with the engine's
    write transactions so that the two never wait on each other's file lock."""

    def __init__(self, path: str, dialect: Dialect, turn: asyncio.Semaphore, busy_ms: int) -> None:
        self.path = path
        self.dialect = dialect
        self.busy_ms = busy_ms
        self._turn = turn
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="hatchery-sqlite-writer")
        self._jobs: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed: fewer than the writes when they group

    # reads

    def _read_conn(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = sqlite_connect(self.path, READ_BUSY_MS)
        return self._reader

    async def one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        rows = await self._read(stmt, params, one=True)
        return rows[0] if rows else None

    async def all(self, stmt: Statement, params: Mapping[str, Any] = {}) -> list[Row]:
        return await self._read(stmt, params, one=False)

    async def _read(self, stmt: Statement, params: Mapping[str, Any], one: bool) -> list[Row]:
        compiled = stmt.on(self.dialect)
        args = compiled.args(params)
        try:
            raws = _fetch(self._read_conn(), compiled.sql, args, one)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StoreUnavailable(_reason(exc)) from exc
            raws = await asyncio.to_thread(self._read_waiting, compiled.sql, args, one)
        return [compiled.row(raw) for raw in raws]

    def _read_waiting(self, sql: str, args: list[Any], one: bool) -> list[Any]:
        with _unavailable(), contextlib.closing(sqlite_connect(self.path, self.busy_ms)) as conn:
            return _fetch(conn, sql, args, one)

    # writes

    async def write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append((fn, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(  # not the context of the write that started it
                self._run(), name="sqlite writer", context=contextvars.Context()
            )
        self._wake.set()
        with metrics.DB_WRITE.time():  # the wait for its group's turn, too
            return await future

    async def write_one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        """One statement written (its first row back), committed in the next group."""
        return await self.write(lambda tx: tx.one(stmt, params))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._jobs:
                await self._group()

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def _group(self) -> None:
        """One transaction for the writes waiting now (and those that come while it runs)."""
        async with self._turn:
            try:
                conn = await self._in_thread(self._begin)
            except StoreUnavailable as exc:
                return self._fail_waiting(exc)
            done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            try:
                while self._jobs and len(done) < GROUP_MAX:
                    fn, future = self._jobs.popleft()
                    if not future.cancelled():
                        done.append((future, *await self._savepoint(conn, fn)))
                await self._in_thread(self._commit)
            except BaseException as exc:
                await self._abandon(done, exc)
                if not isinstance(exc, Exception):
                    raise  # the writer is being cancelled (closing)
                return None
        for future, result, error in done:
            _settle(future, result, error)
        return None

    def _begin(self) -> sqlite3.Connection:
        with _unavailable():
            if self._writer is None:
                self._writer = sqlite_connect(self.path, self.busy_ms)
            self._writer.execute("BEGIN IMMEDIATE")
            return self._writer

    def _commit(self) -> None:
        assert self._writer is not None
        with _unavailable():
            self._writer.execute("COMMIT")
        self.commits += 1

    async def _savepoint(
        self, conn: sqlite3.Connection, fn: Callable[[Tx], Awaitable[Any]]
    ) -> tuple[Any, BaseException | None]:
        with _unavailable():
            conn.execute("SAVEPOINT w")
        try:
            result = await fn(_SqliteTx(conn, self.dialect))
        except Exception as exc:
            with _unavailable():
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
            return None, exc
        with _unavailable():
            conn.execute("RELEASE w")
        return result, None

    async def _abandon(
        self, done: list[tuple[asyncio.Future[Any], Any, BaseException | None]], exc: BaseException
    ) -> None:
        """The group's transaction failed (or the writer was cancelled): undo it, tell everyone."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self._in_thread(self._rollback))
        error = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(_reason(exc))
        for future, _result, _error in done:
            _settle(future, None, error)

    def _rollback(self) -> None:
        if self._writer is not None and self._writer.in_transaction:
            self._writer.execute("ROLLBACK")

    def _fail_waiting(self, exc: BaseException) -> None:
        while self._jobs:
            _settle(self._jobs.popleft()[1], None, exc)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self._fail_waiting(StoreUnavailable("The database is closing; try again"))
        await self._in_thread(self._close_all)
        self._thread.shutdown(wait=True)

    def _close_all(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None


def _fetch(conn: sqlite3.Connection, sql: str, args: list[Any], one: bool) -> list[Any]:
    # Closing the cursor resets the statement: a read left half-stepped would hold its snapshot.
    with contextlib.closing(conn.execute(sql, args)) as cursor:
        if not one:
            return cursor.fetchall()
        raw = cursor.fetchone()
    return [] if raw is None else [raw]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


# --- PostgreSQL -----------------------------------------------------------------------------


class _PgTx:
    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    async def one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        compiled = stmt.on(self.dialect)
        async with _pg_unavailable():
            raw = await self.conn.fetchrow(compiled.sql, *compiled.args(params))
        return None if raw is None else compiled.row(raw)

    async def all(self, stmt: Statement, params: Mapping[str, Any] = {}) -> list[Row]:
        compiled = stmt.on(self.dialect)
        async with _pg_unavailable():
            raws = await self.conn.fetch(compiled.sql, *compiled.args(params))
        return [compiled.row(raw) for raw in raws]

    async def execute(self, stmt: Statement, params: Mapping[str, Any] = {}) -> int:
        compiled = stmt.on(self.dialect)
        async with _pg_unavailable():
            status: str = await self.conn.execute(compiled.sql, *compiled.args(params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


class _PgConnections:
    """At most ``size`` asyncpg connections, each lent to one caller at a time: a stack of idle
    ones and a queue of waiters. (asyncpg's own pool costs twice the query it wraps here: timers,
    shields and a reset on every release.) A connection whose caller was cancelled, or that
    broke, is closed rather than lent again; an error of the caller's own leaves it usable (a
    transaction has rolled back by then)."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self.size = size
        self._idle: list[Any] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[Any]] = deque()  # each gets a connection, or None
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self._acquire()
        try:
            yield conn
        except asyncio.CancelledError:
            self._discard(conn)  # a statement may still be on the wire
            raise
        except BaseException:
            self._release(conn)
            raise
        self._release(conn)

    async def _acquire(self) -> Any:
        if self._idle:
            return self._idle.pop()
        if self._open >= self.size:
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result())
                raise
            if conn is not None:
                return conn
        return await self._connect()

    async def _connect(self) -> Any:
        import asyncpg

        self._open += 1
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            await _pg_codecs(conn)
        except BaseException:
            self._open -= 1
            self._hand_on(None)
            raise
        return conn

    def _release(self, conn: Any) -> None:
        if self._closed or conn.is_closed() or conn.is_in_transaction():
            self._discard(conn)
        elif not self._hand_on(conn):
            self._idle.append(conn)

    def _discard(self, conn: Any) -> None:
        conn.terminate()
        self._open -= 1
        self._hand_on(None)  # a waiter may open one in its place

    def _hand_on(self, conn: Any) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


class PgDriver:
    """asyncpg connections of its own (``size`` at most), opened as needed. JSON is decoded by
    the connection, as SQLAlchemy's asyncpg dialect does on its own connections."""

    def __init__(self, dsn: str, dialect: Dialect, size: int) -> None:
        self.dsn = dsn
        self.dialect = dialect
        self.size = size
        self._connections = _PgConnections(dsn, size)

    async def one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        async with _pg_unavailable(), self._connections.connection() as conn:
            return await _PgTx(conn, self.dialect).one(stmt, params)

    async def all(self, stmt: Statement, params: Mapping[str, Any] = {}) -> list[Row]:
        async with _pg_unavailable(), self._connections.connection() as conn:
            return await _PgTx(conn, self.dialect).all(stmt, params)

    async def write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        with metrics.DB_WRITE.time():
            async with _pg_unavailable(), self._connections.connection() as conn:
                async with conn.transaction():
                    return await fn(_PgTx(conn, self.dialect))

    async def write_one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> Row | None:
        """One statement written (its first row back), committed on its own: no BEGIN and no
        COMMIT around it, so one round trip."""
        with metrics.DB_WRITE.time():
            async with _pg_unavailable(), self._connections.connection() as conn:
                return await _PgTx(conn, self.dialect).one(stmt, params)

    async def close(self) -> None:
        await self._connections.close()
        self._connections = _PgConnections(self.dsn, self.size)  # usable again, as the engine is


async def _pg_codecs(conn: Any) -> None:
    # Values arrive already serialised by SQLAlchemy's JSON type; rows decode here.
    await conn.set_type_codec("json", encoder=str, decoder=json.loads, schema="pg_catalog")


# --- errors ---------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    first = (str(exc).splitlines() or [""])[0][:200]
    return f"The database is unavailable ({type(exc).__name__}: {first}); try again"


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(_reason(exc)) from exc
    except sqlite3.IntegrityError as exc:  # the engine's name for it, whichever path ran
        raise sa.exc.IntegrityError(None, None, exc) from exc


@contextlib.asynccontextmanager
async def _pg_unavailable() -> AsyncIterator[None]:
    import asyncpg

    try:
        yield
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(_reason(exc)) from exc
    except asyncpg.TooManyConnectionsError as exc:
        raise StoreUnavailable(_reason(exc)) from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise sa.exc.IntegrityError(None, None, exc) from exc
