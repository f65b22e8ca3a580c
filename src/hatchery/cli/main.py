"""The ``hatchery`` command. Server and admin commands import the server's dependencies only when
they run, so the client side of the CLI needs nothing but httpx."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hatchery import __version__


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


def build_parser() -> argparse.ArgumentParser:
    settings = _settings_parent()
    parser = argparse.ArgumentParser(
        prog="hatchery", description="Hatchery media generation server"
    )
    parser.add_argument("--version", action="version", version=f"hatchery {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    key_create = keys_sub.add_parser("create", parents=[settings], help="create a key; prints it")
    key_create.add_argument("email")
    key_create.add_argument("--expires-in", default=None, help="e.g. 30d, 12h")
    keys_sub.add_parser("revoke", parents=[settings], help="revoke a key").add_argument("key")

    balance = sub.add_parser("balance", help="account balances")
    balance_sub = balance.add_subparsers(dest="action", required=True)
    add = balance_sub.add_parser("add", parents=[settings], help="credit an account")
    add.add_argument("email")
    add.add_argument("amount", help="dollars, e.g. 5.00")

    secret = sub.add_parser("webhook-secret", help="webhook signing secrets")
    secret_sub = secret.add_subparsers(dest="action", required=True)
    secret_sub.add_parser("rotate", parents=[settings], help="new secret; prints it").add_argument(
        "email"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hatchery.cli import server  # the server extra

    return server.run(args)


if __name__ == "__main__":
    sys.exit(main())
