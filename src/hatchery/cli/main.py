"""The ``hatchery`` command. Client commands (``generate``, ``tasks``, ``usage``, ``account``) talk
to a server over HTTP and need nothing but httpx; server and admin commands import the server's
dependencies only when they run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hatchery import __version__
from hatchery.client._base import DEFAULT_BASE_URL, DEFAULT_WAIT_TIMEOUT, idempotency_key

CLIENT_COMMANDS = frozenset({"generate", "tasks", "usage", "account"})
TASK_TYPES = "image_generate, image_edit or video_generate"
KEY_HELP = (
    "only the usage of this API key of the account: its prefix (e.g. hk_AbCdEf1234) or the "
    "whole key (--api-key is the key the command signs in with)"
)
LIST_ONLY = ("page", "per_page", "model", "type")  # ``usage`` options that ``usage summary`` lacks


def _settings_parent() -> argparse.ArgumentParser:
    """One ``--flag`` per setting (``HATCHERY_DATA_DIR`` is ``--data-dir``)."""
    from hatchery.settings import setting_names

    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (default: the HATCHERY_* environment variables)")
    for name, kind in setting_names().items():
        flag = "--" + name.replace("_", "-")
        if kind == "bool":
            group.add_argument(flag, dest=name, action="store_const", const=True, default=None)
        else:
            group.add_argument(flag, dest=name, default=None, metavar=name.upper())
    return parent


def _client_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--api-key", default=None, help="default: HATCHERY_API_KEY")
    group.add_argument(
        "--base-url",
        default=None,
        help=f"the server (default: HATCHERY_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    group.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    return parent


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(raw: str) -> int | float:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {raw!r}")
        return value

    return parse


def _key(raw: str) -> str:
    try:
        return idempotency_key(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("idempotency_key", "the key")) from None


def _add_wait_options(
    parser: argparse.ArgumentParser, out_help: str, out_default: str | None
) -> None:
    parser.add_argument("--out", default=out_default, metavar="DIR", help=out_help)
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=DEFAULT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop waiting after this long (default {DEFAULT_WAIT_TIMEOUT:g}; the task runs on)",
    )


def _add_client_commands(sub: Any) -> None:
    client = _client_parent()
    gen = sub.add_parser("generate", parents=[client], help="generate an image or a video")
    gen.description = (
        "Submit a task, show its status while it runs, download its outputs into --out and "
        "print their paths (one per line). With --no-wait, print the task id and return."
    )
    gen.add_argument("prompt")
    gen.add_argument("--model", default="nanobanana", help="default: nanobanana")
    gen.add_argument("--negative-prompt", default=None)
    gen.add_argument("--aspect-ratio", default=None, help="16:9 or 9:16")
    gen.add_argument("--resolution", default=None, help="1k, 2k or 4k")
    gen.add_argument("--num-outputs", type=_positive(int), default=None, metavar="N")
    gen.add_argument("--duration", type=_positive(int), default=None, metavar="SECONDS")
    gen.add_argument(
        "--image-url", action="append", default=[], metavar="URL", help="a reference image (repeat)"
    )
    gen.add_argument("--webhook-url", default=None, metavar="URL")
    gen.add_argument(
        "--idempotency-key",
        type=_key,
        default=None,
        metavar="KEY",
        help="the same KEY again returns the task it first made instead of a new one "
        "(default: a new key, reused only by this command's own retries)",
    )
    gen.add_argument("--no-wait", action="store_true", help="submit only; print the task id")
    _add_wait_options(gen, "where the outputs go (default: the current directory)", None)

    tasks = sub.add_parser("tasks", help="list, show, wait for, watch and cancel tasks")
    tasks_sub = tasks.add_subparsers(dest="action", required=True)
    listing = tasks_sub.add_parser("list", parents=[client], help="a page of tasks, newest first")
    listing.add_argument("--page", type=_positive(int), default=None)
    listing.add_argument(
        "--cursor", default=None, help="start after this cursor (from the previous page)"
    )
    listing.add_argument("--per-page", type=_positive(int), default=None, metavar="N")
    listing.add_argument("--status", default=None, help="pending, processing, completed, failed")
    listing.add_argument("--model", default=None)
    listing.add_argument("--type", default=None, help=TASK_TYPES)
    tasks_sub.add_parser("get", parents=[client], help="show one task").add_argument("id")
    wait = tasks_sub.add_parser("wait", parents=[client], help="wait for a task to end")
    wait.add_argument("id")
    _add_wait_options(wait, "also download the outputs into DIR and print their paths", None)
    watch = tasks_sub.add_parser(
        "watch", parents=[client], help="print each status change until the task ends"
    )
    watch.description = (
        "Follow the task's event stream: print its status, then each change, until it ends "
        "(exit 0 when it completed). With --json, one JSON object per line."
    )
    watch.add_argument("id")
    tasks_sub.add_parser(
        "cancel", parents=[client], help="cancel a pending or processing task"
    ).add_argument("id")

    _add_usage_command(sub, client)
    account = sub.add_parser("account", parents=[client], help="the account's balance and usage")
    account.add_argument("--key", default=None, metavar="KEY", help=KEY_HELP)


def _add_usage_command(sub: Any, client: argparse.ArgumentParser) -> None:
    usage = sub.add_parser("usage", parents=[client], help="what was charged, and for what")
    usage.description = (
        "`hatchery usage` lists the account's usage records, a row per charge, newest first; "
        "`hatchery usage summary` sums them per model. Days are UTC, YYYY-MM-DD, both included."
    )
    usage.add_argument(
        "action",
        nargs="?",
        choices=("list", "summary"),
        default="list",
        help="list (the default): the records; summary: a row per model",
    )
    usage.add_argument("--start-date", default=None, metavar="YYYY-MM-DD", help="from this day")
    usage.add_argument("--end-date", default=None, metavar="YYYY-MM-DD", help="to this day")
    usage.add_argument("--key", default=None, metavar="KEY", help=KEY_HELP)
    records = usage.add_argument_group("records only (not with summary)")
    records.add_argument("--model", default=None)
    records.add_argument("--type", default=None, help=TASK_TYPES)
    records.add_argument("--page", type=_positive(int), default=None)
    records.add_argument("--per-page", type=_positive(int), default=None, metavar="N")


def build_parser() -> argparse.ArgumentParser:
    settings = _settings_parent()
    parser = argparse.ArgumentParser(
        prog="hatchery", description="Hatchery: asynchronous media generation, server and client"
    )
    parser.add_argument("--version", action="version", version=f"hatchery {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_client_commands(sub)

    serve = sub.add_parser("serve", parents=[settings], help="run the API and its workers")
    serve.description = (
        "Run the HTTP API. With --workers N (HATCHERY_WORKERS) it also runs N task slots, the "
        "reaper and webhook delivery in the same process; --workers 0 runs the API only, for "
        "deployments whose work is done by `hatchery worker` processes."
    )
    worker = sub.add_parser("worker", parents=[settings], help="run workers only (no API)")
    worker.description = (
        "Claim and run tasks, return lapsed ones to the queue and deliver webhooks, with no API. "
        "Any number of workers, on any hosts, may share one PostgreSQL database. SIGTERM stops "
        "claiming, lets running tasks finish within HATCHERY_SHUTDOWN_GRACE and gives the rest "
        "back to the queue."
    )
    worker.add_argument(
        "--concurrency",
        dest="workers",
        default=None,
        metavar="N",
        help="tasks run at once (default: HATCHERY_WORKERS)",
    )

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", parents=[settings], help="apply pending migrations")

    users = sub.add_parser("users", help="manage accounts")
    users_sub = users.add_subparsers(dest="action", required=True)
    create = users_sub.add_parser("create", parents=[settings], help="create an account")
    create.add_argument("email")
    create.add_argument("--balance", default="10.00", help="starting balance in dollars")
    for action in ("suspend", "activate"):
        users_sub.add_parser(action, parents=[settings], help=f"{action} an account").add_argument(
            "email"
        )
    limit = users_sub.add_parser(
        "rate-limit", parents=[settings], help="set an account's rate limit per API key"
    )
    limit.description = (
        "Requests each of the account's API keys may make, in the notation of "
        "HATCHERY_RATE_LIMIT (e.g. 10/second;500/hour), off for no limit, or default for the "
        "server's HATCHERY_RATE_LIMIT. Running servers apply it to the next request."
    )
    limit.add_argument("email")
    limit.add_argument("limit", help="e.g. 100/second, 10/second;500/hour, off or default")
    flag = users_sub.add_parser("flag", parents=[settings], help="give or take an account flag")
    flag.description = (
        "Flags allow an account what others may not: no-watermark lets its VideoGen tool "
        "executions ask for outputs without a watermark (watermarkMode NONE). --off takes it."
    )
    flag.add_argument("email")
    flag.add_argument("flag", help="no-watermark")
    flag.add_argument("--off", action="store_true", help="take the flag away")
    password = users_sub.add_parser(
        "set-password", parents=[settings], help="set an account's dashboard password"
    )
    password.description = (
        "Typed twice at a terminal, or the first line of standard input. At least "
        "10 characters. Signs the account's dashboard sessions out."
    )
    password.add_argument("email")
    invite = users_sub.add_parser(
        "invite", parents=[settings], help="print a one-time link to set a dashboard password"
    )
    invite.add_argument("email")
    invite.add_argument("--expires-in", default=None, help="how long it works (default 7d)")
    users_list = users_sub.add_parser("list", parents=[settings], help="accounts, by email")
    users_list.add_argument("query", nargs="?", default="", help="part of an email or an id")
    users_list.add_argument("--status", choices=("active", "suspended"), default=None)
    users_list.add_argument("--role", choices=("user", "admin"), default=None)
    users_list.add_argument("--limit", type=_positive(int), default=50)
    for action, what in (("grant-admin", "make an account an admin"), ("revoke-admin", "")):
        role = users_sub.add_parser(
            action, parents=[settings], help=what or "make an admin an ordinary account again"
        )
        role.add_argument("email")
        role.description = (
            "Admins may use the admin API (/admin/v1) with their keys and the operator's pages "
            "(/dashboard/admin) with their dashboard session."
        )

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    key_create = keys_sub.add_parser("create", parents=[settings], help="create a key; prints it")
    key_create.add_argument("email")
    key_create.add_argument("--expires-in", default=None, help="e.g. 30d, 12h")
    keys_sub.add_parser("revoke", parents=[settings], help="revoke a key").add_argument("key")
    key_list = keys_sub.add_parser("list", parents=[settings], help="keys, newest first")
    key_list.add_argument("--email", default=None, help="one account's only")
    key_list.add_argument("--active", action="store_true", help="neither revoked nor expired")
    key_list.add_argument("--limit", type=_positive(int), default=50)

    balance = sub.add_parser("balance", help="account balances")
    balance_sub = balance.add_subparsers(dest="action", required=True)
    add = balance_sub.add_parser("add", parents=[settings], help="credit an account")
    add.add_argument("email")
    add.add_argument("amount", help="dollars, e.g. 5.00")
    add.add_argument("--reason", default="balance add", help="kept in the ledger")
    debit = balance_sub.add_parser("debit", parents=[settings], help="debit an account")
    debit.add_argument("email")
    debit.add_argument("amount", help="dollars, e.g. 2.50")
    debit.add_argument("--reason", required=True, help="kept in the ledger")
    _add_operator_commands(sub, settings)

    secret = sub.add_parser("webhook-secret", help="webhook signing secrets")
    secret_sub = secret.add_subparsers(dest="action", required=True)
    secret_sub.add_parser("rotate", parents=[settings], help="new secret; prints it").add_argument(
        "email"
    )
    return parser


def _add_operator_commands(sub: Any, settings: argparse.ArgumentParser) -> None:
    """``routes`` (the model routes in the database) and ``audit`` (the audit log)."""
    routes = sub.add_parser("routes", help="the providers, prices and flags of models and tools")
    routes.description = (
        "Routes live in the database, seeded from the catalog file; a change applies on every "
        "running server within seconds (at once on PostgreSQL) and is kept in the audit log."
    )
    routes_sub = routes.add_subparsers(dest="action", required=True)
    routes_sub.add_parser("list", parents=[settings], help="every model and tool")
    named = argparse.ArgumentParser(add_help=False)
    named.add_argument("name", help="a model's name (a tool's with --tool)")
    named.add_argument("--tool", action="store_true", help="NAME is a tool")
    change = argparse.ArgumentParser(add_help=False)
    change.add_argument("--reason", default=None, help="kept in the audit log")
    routes_sub.add_parser("show", parents=[settings, named], help="one route")
    order = routes_sub.add_parser(
        "providers", parents=[settings, named, change], help="set the providers, in order"
    )
    order.add_argument("providers", nargs="+", metavar="PROVIDER")
    for action in ("enable", "disable"):
        one = routes_sub.add_parser(
            action, parents=[settings, named, change], help=f"{action} one provider of a route"
        )
        one.add_argument("provider")
    price = routes_sub.add_parser(
        "price", parents=[settings, named, change], help="set the unit price (dollars)"
    )
    price.add_argument("amount", help="dollars per unit, e.g. 0.04")
    sync = routes_sub.add_parser(
        "synchronous", parents=[settings, named, change], help="a model's submits wait, or not"
    )
    sync.add_argument("value", choices=("on", "off"))
    routes_sub.add_parser(
        "reset", parents=[settings, named, change], help="back to this host's catalog file's"
    )
    audit = sub.add_parser("audit", parents=[settings], help="the operator actions, newest first")
    audit.add_argument("--target", default=None, help="account:ID, model:NAME, key:PREFIX, …")
    audit.add_argument("--actor", default=None, help="an admin's email, or cli:USER@HOST")
    audit.add_argument("--action", default=None, help="route.update, or route. for all")
    audit.add_argument("--limit", type=_positive(int), default=20)
    sub.add_parser(
        "health", parents=[settings], help="workers, providers, the queue and the webhook outbox"
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot check alone: options that do not go together (exits 2)."""
    if args.command == "generate" and args.no_wait and args.out is not None:
        parser.error("--out downloads the outputs, so it needs the wait that --no-wait skips")
    if args.command == "usage" and args.action == "summary":
        given = ["--" + name.replace("_", "-") for name in LIST_ONLY if getattr(args, name)]
        if given:
            parser.error(f"usage summary sums every model and type; {', '.join(given)}: list only")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    if args.command in CLIENT_COMMANDS:
        from hatchery.cli import client

        return client.run(args)
    try:
        from hatchery.cli import server
    except ModuleNotFoundError as exc:
        if (exc.name or "hatchery").partition(".")[0] == "hatchery":
            raise
        sys.stderr.write(
            f"error: `hatchery {args.command}` needs the server's dependencies (missing: "
            f"{exc.name}); install them with: pip install 'hatchery[server]'\n"
        )
        return 1
    return server.run(args)


if __name__ == "__main__":
    sys.exit(main())
