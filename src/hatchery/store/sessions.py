"""Queries on the dashboard's sessions and invites. A session or invite is found by the SHA-256
of its token (``domain.keys.token_hash``); the token itself is only ever in the browser's cookie
or the printed link. Each function runs on a connection the caller holds in a transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain import keys
from hatchery.store.db import utcnow
from hatchery.store.tables import dashboard_invites, dashboard_sessions

MAX_AGE = timedelta(days=30)  # no session outlives its sign-in by more, however much it is used


@dataclass(frozen=True)
class Session:
    id: str  # the hash of its token
    account_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def renewal(self, idle: timedelta, now: datetime) -> datetime | None:
        """When it should now expire, if a use at ``now`` should push that back (less than half
        of ``idle`` is left, and the push stays within MAX_AGE of the sign-in); else None."""
        wanted = min(now + idle, self.created_at + MAX_AGE)
        return wanted if self.expires_at - now < idle / 2 and wanted > self.expires_at else None


async def create(
    conn: AsyncConnection, account_id: str, idle: timedelta, user_agent: str | None
) -> tuple[str, Session]:
    """A new session of the account: its token (for the cookie) and its row."""
    token, now = keys.new_token(), utcnow()
    session = Session(keys.token_hash(token), account_id, keys.new_token(), now, now + idle)
    await conn.execute(
        dashboard_sessions.insert().values(
            id=session.id,
            account_id=account_id,
            csrf_token=session.csrf_token,
            created_at=now,
            expires_at=session.expires_at,
            user_agent=(user_agent or "")[:256] or None,
        )
    )
    return token, session


async def read(conn: AsyncConnection, token: str) -> Session | None:
    """The unexpired session whose cookie holds ``token``."""
    query = sa.select(dashboard_sessions).where(
        dashboard_sessions.c.id == keys.token_hash(token),
        dashboard_sessions.c.expires_at > utcnow(),
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    m = row._mapping
    return Session(m["id"], m["account_id"], m["csrf_token"], m["created_at"], m["expires_at"])


async def extend(conn: AsyncConnection, session_id: str, expires_at: datetime) -> None:
    await conn.execute(
        dashboard_sessions.update()
        .where(dashboard_sessions.c.id == session_id)
        .values(expires_at=expires_at)
    )


async def end(conn: AsyncConnection, token: str) -> None:
    """Sign the session out (nothing if there is none)."""
    await conn.execute(
        dashboard_sessions.delete().where(dashboard_sessions.c.id == keys.token_hash(token))
    )


async def end_all(conn: AsyncConnection, account_id: str) -> int:
    """Sign every browser of the account out (its password changed); how many were."""
    result = await conn.execute(
        dashboard_sessions.delete().where(dashboard_sessions.c.account_id == account_id)
    )
    return result.rowcount


async def purge(conn: AsyncConnection) -> int:
    """Remove the sessions that have expired; how many."""
    result = await conn.execute(
        dashboard_sessions.delete().where(dashboard_sessions.c.expires_at <= utcnow())
    )
    return result.rowcount


async def invite(conn: AsyncConnection, account_id: str, valid_for: timedelta) -> str:
    """A one-time invite of the account; returns its token (for the link)."""
    token, now = keys.new_token(), utcnow()
    await conn.execute(
        dashboard_invites.insert().values(
            id=keys.token_hash(token),
            account_id=account_id,
            created_at=now,
            expires_at=now + valid_for,
        )
    )
    return token


async def invited(conn: AsyncConnection, token: str) -> str | None:
    """The account an unused, unexpired invite is for (the invite stays unused)."""
    query = sa.select(dashboard_invites.c.account_id).where(*_usable(token))
    return (await conn.execute(query)).scalar_one_or_none()


async def use_invite(conn: AsyncConnection, token: str) -> str | None:
    """Use the invite up (one conditional update: two uses at once cannot both succeed); the
    account it is for, or None if it was not usable."""
    query = (
        dashboard_invites.update()
        .where(*_usable(token))
        .values(used_at=utcnow())
        .returning(dashboard_invites.c.account_id)
    )
    account_id: str | None = (await conn.execute(query)).scalar_one_or_none()
    return account_id


def _usable(token: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        dashboard_invites.c.id == keys.token_hash(token),
        dashboard_invites.c.used_at.is_(None),
        dashboard_invites.c.expires_at > utcnow(),
    )
