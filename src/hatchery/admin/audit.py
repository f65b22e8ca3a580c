"""Who does an operator action, and its entry in the audit log (``store.audit``).

An action is done by an admin account (through one of its API keys or its dashboard session) or
by the CLI on a host that can reach the database; each writes its entry in its own transaction.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.store import audit


@dataclass(frozen=True)
class Actor:
    name: str  # the admin's email, or "cli:<user>@<host>"
    via: str  # "key:<prefix>", "session" or "cli"
    account_id: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        """The operator at a terminal: the system user and the host."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for the uid (a container)
            user = "unknown"
        return cls(f"cli:{user}@{socket.gethostname()}", "cli")


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> None:
    await audit.record(
        conn,
        actor=actor.name,
        actor_id=actor.account_id,
        via=actor.via,
        action=action,
        target=target,
        before=before,
        after=after,
        reason=reason,
    )
