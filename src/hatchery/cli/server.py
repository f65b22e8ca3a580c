"""Server-side commands: ``serve``, ``worker``, ``db upgrade`` and the admin commands (``routes``
and ``audit`` in ``cli.operator``).

SQLite (the embedded default) upgrades its schema on start. PostgreSQL, shared by many processes,
is upgraded only by ``hatchery db upgrade``: every other command refuses a schema that is behind."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hatchery import admin
from hatchery.cli import operator
from hatchery.domain.money import format_balance, parse_dollars
from hatchery.errors import HatcheryError, StoreUnavailable
from hatchery.observe import logs, tracing
from hatchery.observe.scrape import Exposition
from hatchery.observe.server import MetricsServer
from hatchery.settings import Settings, SettingsError, setting_names
from hatchery.store import migrate
from hatchery.store.accounts import ACTIVE, ADMIN, SUSPENDED, USER
from hatchery.store.db import Database, normalize_url

if TYPE_CHECKING:
    from hatchery.services import Services

Action = Callable[[Database, argparse.Namespace], Awaitable[str | None]]


log = logging.getLogger("hatchery")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(**{n: getattr(args, n, None) for n in setting_names()})


async def _with_db(
    settings: Settings, action: Callable[[Database], Awaitable[Any]], *, check: bool = True
) -> Any:
    db = Database.connect(settings.database_url, pool_size=2)
    try:
        if check:
            await ensure_schema(db)
        return await action(db)
    finally:
        await db.dispose()


async def _known_revision(db: Database) -> str | None:
    current = await migrate.current_revision(db)
    if current is not None and not migrate.is_known(current):
        raise HatcheryError(
            f"the database schema (revision {current}) is newer than this version of Hatchery "
            f"knows (revision {migrate.head_revision()}); run the newer version of Hatchery"
        )
    return current


async def ensure_schema(db: Database) -> None:
    """SQLite: upgrade. PostgreSQL: refuse to go on unless the schema is the one we need.
    Either way, refuse a schema newer than this version knows."""
    current, head = await _known_revision(db), migrate.head_revision()
    if current == head:
        return
    if db.is_sqlite:
        await migrate.upgrade(db)
        return
    state = f"at revision {current}" if current else "empty (no Hatchery schema)"
    raise HatcheryError(
        f"the database schema is behind: it is {state} and this version needs revision "
        f"{head}; run `hatchery db upgrade` (with the same HATCHERY_DATABASE_URL) first"
    )


def _admin_action(args: argparse.Namespace) -> Action:
    actions: dict[tuple[str, str], Action] = {
        ("users", "create"): lambda db, a: _created(db, a),
        ("users", "suspend"): lambda db, a: _status(db, a.email, SUSPENDED),
        ("users", "activate"): lambda db, a: _status(db, a.email, ACTIVE),
        ("users", "rate-limit"): lambda db, a: _rate_limit(db, a.email, a.limit),
        ("users", "flag"): lambda db, a: admin.set_flag(db, a.email, a.flag, on=not a.off),
        ("users", "set-password"): lambda db, a: admin.set_password(db, a.email, _password()),
        ("users", "invite"): lambda db, a: _invited(db, a),
        ("keys", "create"): lambda db, a: admin.create_key(
            db, a.email, admin.parse_duration(a.expires_in) if a.expires_in else None
        ),
        ("keys", "revoke"): lambda db, a: _revoked(db, a.key),
        ("users", "list"): operator.users_command,
        ("keys", "list"): operator.keys_command,
        ("users", "grant-admin"): lambda db, a: _role(db, a.email, ADMIN),
        ("users", "revoke-admin"): lambda db, a: _role(db, a.email, USER),
        ("balance", "add"): lambda db, a: admin.add_balance(
            db, a.email, _amount(a.amount), a.reason
        ),
        ("balance", "debit"): lambda db, a: _debited(db, a),
        ("webhook-secret", "rotate"): lambda db, a: admin.rotate_webhook_secret(db, a.email),
        ("db", "upgrade"): lambda db, a: _upgraded(db),
    }
    return actions[(args.command, args.action)]


def _amount(text: str) -> int:
    try:
        return parse_dollars(text)
    except ValueError as exc:
        raise HatcheryError(str(exc)) from None


async def _created(db: Database, args: argparse.Namespace) -> str:
    account = await admin.create_user(db, args.email, _amount(args.balance))
    return f"created {account.email} ({account.id})"


async def _status(db: Database, email: str, status: str) -> str:
    await admin.set_status(db, email, status)
    return f"{email} is {status}"


async def _role(db: Database, email: str, role: str) -> str:
    account = await admin.set_role(db, email, role)
    return f"{account.email} is {'an admin' if account.is_admin else 'not an admin'}"


async def _debited(db: Database, args: argparse.Namespace) -> str:
    amount = _amount(args.amount)
    if amount <= 0:
        raise HatcheryError("the amount to debit must be more than zero, e.g. 2.50")
    account, _ = await admin.adjust_balance(db, args.email, -amount, args.reason)
    return f"{account.email}: balance {format_balance(account.balance_micros)}"


async def _rate_limit(db: Database, email: str, limit: str) -> str:
    return f"{email}: rate limit per API key {await admin.set_rate_limit(db, email, limit)}"


async def _revoked(db: Database, key: str) -> str:
    return f"revoked {await admin.revoke_key(db, key)} key(s)"


def _password() -> str:
    """The new password: typed twice at a terminal, else the first line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New dashboard password: ")
    if getpass.getpass("Again: ") != first:
        raise HatcheryError("the two passwords differ; nothing was changed")
    return first


async def _invited(db: Database, args: argparse.Namespace) -> str:
    if args.expires_in:
        path = await admin.invite(db, args.email, admin.parse_duration(args.expires_in))
    else:
        path = await admin.invite(db, args.email)
    settings = settings_from(args)
    return f"{settings.public_url}{path}\n(one use; it lets {args.email} set a dashboard password)"


async def _upgraded(db: Database) -> str:
    await _known_revision(db)
    await migrate.upgrade(db)
    return f"database is at revision {migrate.head_revision()}"


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        if args.command == "serve":
            return serve(settings)
        if args.command == "worker":
            return work(settings)
        if args.command == "routes":
            out = asyncio.run(_with_services(settings, args))
            print(out)
            return 0
        action = _operator_action(args, settings)
        upgrading = args.command == "db"
        out = asyncio.run(_with_db(settings, lambda db: action(db, args), check=not upgrading))
    except StoreUnavailable as exc:
        print(f"error: {_database_error(settings, exc.__cause__ or exc)}", file=sys.stderr)
        return 1
    except (HatcheryError, SettingsError, ValueError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except (sa.exc.DBAPIError, OSError) as exc:
        print(f"error: {_database_error(settings, exc)}", file=sys.stderr)
        return 1
    if out:
        print(out)
    return 0


def _operator_action(args: argparse.Namespace, settings: Settings) -> Action:
    if args.command == "audit":
        return operator.audit_command
    if args.command == "health":
        return lambda db, a: operator.health_command(db, settings)
    return _admin_action(args)


async def _with_services(settings: Settings, args: argparse.Namespace) -> str:
    """A ``routes`` command: it needs this host's providers to check a change against."""
    from hatchery.services import Services

    services = Services.build(settings)
    try:
        await ensure_schema(services.db)
        return await operator.routes_command(services, args)
    finally:
        await services.close()


def _database_error(settings: Settings, exc: BaseException) -> str:
    """What went wrong reaching the database, naming it (without its password)."""
    where = normalize_url(settings.database_url).render_as_string(hide_password=True)
    reason = getattr(exc, "orig", None) or exc
    return f"cannot use the database {where}: {type(reason).__name__}: {reason}".strip()


async def _prepare(settings: Settings) -> admin.Bootstrap | None:
    """Check (or, on SQLite, upgrade) the schema; on a new embedded database, make the first
    account. A PostgreSQL deployment makes its accounts with `hatchery users create`."""

    async def action(db: Database) -> admin.Bootstrap | None:
        return await admin.bootstrap(db) if db.is_sqlite else None

    return await _with_db(settings, action)  # type: ignore[no-any-return]


def _configure_logging(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)


def _announce(settings: Settings, boot: admin.Bootstrap) -> None:
    body = '{"model":"nanobanana","prompt":"a red fox"}'
    print(
        f"Created account {boot.email} with $10.00. Its API key (shown once):\n"
        f"  {boot.key}\n"
        f"Try: curl -X POST {settings.public_url}/v1/generate "
        f"-H 'Authorization: Bearer {boot.key}' -H 'Content-Type: application/json' -d '{body}'\n"
        f"Dashboard: set a password for {boot.email} at (one use, 7 days):\n"
        f"  {settings.public_url}{boot.invite}",
        flush=True,
    )


def serve(settings: Settings) -> int:
    import uvicorn

    from hatchery.api.app import create_app
    from hatchery.services import Services

    _configure_logging(settings)
    tracing.configure(settings, role="api" if settings.workers == 0 else "server")
    services = Services.build(settings)  # a bad catalog or deny-list stops us here
    boot = asyncio.run(_prepare(settings))
    if boot:
        _announce(settings, boot)
    app = create_app(services, run_workers=settings.workers > 0)
    settle_heap()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,  # its lines go through ours (observe.logs), in our format
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        tracing.shutdown()
    return 0


def work(settings: Settings) -> int:
    from hatchery.services import Services

    if settings.workers < 1:
        raise HatcheryError("a worker needs --concurrency (HATCHERY_WORKERS) of 1 or more")
    _configure_logging(settings)
    tracing.configure(settings, role="worker")
    try:
        _run_fast(_work(Services.build(settings)))
    finally:
        tracing.shutdown()
    return 0


# Young objects are collected after 20,000 net allocations (CPython's default: 700), and the
# middle generation after 20 young collections (default 10).
GC_THRESHOLDS = (20_000, 20, 10)


def settle_heap() -> None:
    """Keep the garbage collector's pauses short with thousands of tasks in flight.

    A full collection stops the event loop for as long as it takes to walk every tracked
    object (about 0.6 µs each on a 2-CPU VM): 150-220 ms with 3,000-5,000 jobs in flight, and
    with CPython's default thresholds it came every 4-5 s, as the objects of each upstream poll
    (alive for the few milliseconds of its round trip) were promoted to the oldest generation.
    So, once start-up is done:

    - what start-up made (modules, classes, the catalog, the app: some 80,000 objects) is left
      out of every later collection (``gc.freeze``); objects among them that later become
      garbage are still freed by their reference count, only a cycle among them would wait for
      the process's end;
    - the young generation is collected after 20,000 allocations instead of 700, so that a
      poll's objects die young instead of reaching the oldest generation. A young collection
      stays under 5 ms; full ones become rare (``docs/benchmarks.md``, capacity).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it comes with uvicorn[standard], and ``serve`` runs
    on it through uvicorn): a worker polling thousands of upstream jobs spends much of its CPU
    in the event loop and its sockets."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _work(services: Services) -> None:
    from hatchery.runtime import Background

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await ensure_schema(services.db)
        await services.routes.start()
        background = Background(services)
        scrapes = await _metrics_server(services)
        settle_heap()
        background.start()
        log.info(
            "worker %s running %d task slot(s)",
            background.worker.owner,
            services.settings.workers,
        )
        await stopping.wait()
        log.info("stopping: no new tasks; waiting up to %.0fs", services.settings.shutdown_grace)
        await background.stop()
        if scrapes:
            await scrapes.stop()
        log.info("worker %s stopped", background.worker.owner)
    finally:
        await services.close()


async def _metrics_server(services: Services) -> MetricsServer | None:
    """A worker's metrics on its own port (``HATCHERY_METRICS_PORT``; 0: none). A port taken is
    logged as an error and the worker runs without them: two workers on one host need a port
    each, and a worker that will not start over its metrics would stop the tasks."""
    s = services.settings
    if not s.metrics_port:
        return None
    render = Exposition.of(services.db, s).render
    server = MetricsServer(render, s.metrics_host, s.metrics_port, s.metrics_token)
    try:
        await server.start()
    except OSError as exc:
        log.error(
            "no metrics: cannot listen on %s:%d (%s); set HATCHERY_METRICS_PORT to a free port "
            "for each worker on this host, or 0 for none",
            s.metrics_host,
            s.metrics_port,
            exc.strerror,
        )
        return None
    return server
