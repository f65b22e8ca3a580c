"""Queries on the files table: records, the processing job's claim and finish, listing and search.

Search is lexical, and the only place where SQLite and PostgreSQL differ here: the database's
full-text index (FTS5 on SQLite, a ``tsvector`` GIN index on PostgreSQL; migration 0008) finds the
files that contain any of the query's words, as prefixes, and orders them by its own rank; the
similarity reported is the share of the query's distinct words that the file's display name or
description contains (1.0 when all of them do), the same on both databases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.files import FileStatus, FileType, Scope, StoredFile
from hatchery.store.db import skip_locked
from hatchery.store.driver import Statement, Tx
from hatchery.store.tables import files

f = files.c
# A word: letters and digits, as both full-text indexes split text (`_` and punctuation separate,
# accents stay: "café" is not "cafe" on either database).
_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_WORDS = 16
OUTPUT_KEYS = (
    "id",
    "account_id",
    "status",
    "type",
    "scope",
    "display_name",
    "description",
    "content_type",
    "bytes",
    "width",
    "height",
    "duration_seconds",
    "object_key",
    "renditions",
    "task_id",
    "tool_type",
    "created_at",
    "updated_at",
    "expires_at",
    "next_attempt_at",
)
_ADD_OUTPUT = Statement(files.insert().values(attempts=0), keys=OUTPUT_KEYS)


async def add_output(tx: Tx, values: dict[str, Any]) -> None:
    """A task output's record, in the transaction that completes the task (on the driver)."""
    await tx.execute(_ADD_OUTPUT, values)


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> StoredFile:
    row = (await conn.execute(files.insert().values(**values).returning(*files.c))).one()
    return StoredFile.from_row(row)


async def get(
    conn: AsyncConnection, file_id: str, account_id: str | None = None
) -> StoredFile | None:
    query = sa.select(files).where(f.id == file_id)
    if account_id is not None:
        query = query.where(f.account_id == account_id)
    row = (await conn.execute(query)).first()
    return StoredFile.from_row(row) if row else None


async def many(conn: AsyncConnection, ids: list[str], account_id: str) -> list[StoredFile]:
    """The account's files of these ids, in the order given (those not found left out)."""
    if not ids:
        return []
    query = sa.select(files).where(f.id.in_(ids), f.account_id == account_id)
    found = {row.id: StoredFile.from_row(row) for row in (await conn.execute(query)).all()}
    return [found[i] for i in ids if i in found]


async def by_playback_id(conn: AsyncConnection, playback_id: str) -> StoredFile | None:
    row = (await conn.execute(sa.select(files).where(f.playback_id == playback_id))).first()
    return StoredFile.from_row(row) if row else None


async def want_renditions(conn: AsyncConnection, file_ids: list[str], now: datetime) -> int:
    """Task outputs among ``file_ids`` still without renditions go to processing (their
    ``updated_at`` is left alone: reading a file does not move it in lists)."""
    result = await conn.execute(
        files.update()
        .where(f.id.in_(file_ids), f.status == FileStatus.STORED.value)
        .values(status=FileStatus.PROCESSING.value, next_attempt_at=now, attempts=0)
    )
    return int(result.rowcount)


async def arrive(
    conn: AsyncConnection, file_id: str, size: int, now: datetime, kept_until: datetime | None
) -> StoredFile | None:
    """An upload's bytes are in the store: processing next, if it was still waiting for them
    (whatever else changed meanwhile); None if it was not."""
    result = await conn.execute(
        files.update()
        .where(f.id == file_id, f.status == FileStatus.UPLOADING.value)
        .values(
            status=FileStatus.PROCESSING.value,
            bytes=size,
            next_attempt_at=now,
            expires_at=kept_until,
            updated_at=now,
        )
        .returning(*files.c)
    )
    row = result.first()
    return StoredFile.from_row(row) if row else None


async def update(
    conn: AsyncConnection, file: StoredFile, now: datetime, **values: Any
) -> StoredFile | None:
    """Change a file unless it changed meanwhile (its ``updated_at`` guards it); None if it did."""
    result = await conn.execute(
        files.update()
        .where(f.id == file.id, f.updated_at == file.updated_at)
        .values(updated_at=now, **values)
        .returning(*files.c)
    )
    row = result.first()
    return StoredFile.from_row(row) if row else None


async def page(
    conn: AsyncConnection, account_id: str, limit: int | None, after: tuple[datetime, int] | None
) -> tuple[list[StoredFile], tuple[datetime, int] | None]:
    """The account's files that are not archived, most recently updated first (all of them
    with no ``limit``), and the position after the last one when there are more."""
    query = (
        sa.select(files)
        .where(f.account_id == account_id, f.archived_at.is_(None))
        .order_by(f.updated_at.desc(), f.seq.desc())
    )
    if limit is not None:
        query = query.limit(limit + 1)
    if after is not None:
        query = query.where(sa.tuple_(f.updated_at, f.seq) < sa.tuple_(*after))
    rows = (await conn.execute(query)).all()
    more = limit is not None and len(rows) > limit
    rows = rows[:limit]
    last = (rows[-1].updated_at, rows[-1].seq) if more else None
    return [StoredFile.from_row(row) for row in rows], last


@dataclass(frozen=True)
class Found:
    similarity: float
    file: StoredFile


def words(text: str) -> list[str]:
    """The distinct lower-cased words of a query, in order, at most ``MAX_QUERY_WORDS``."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_WORDS]


def similarity(query_words: list[str], file: StoredFile) -> float:
    """The share of the query's words that begin a word of the file's name or description."""
    if not query_words:
        return 0.0
    have = _WORD.findall(f"{file.display_name} {file.description or ''}".lower())
    found = sum(1 for q in query_words if any(w.startswith(q) for w in have))
    return round(found / len(query_words), 4)


def _searchable(account_id: str) -> list[sa.ColumnElement[bool]]:
    return [
        f.account_id == account_id,
        f.archived_at.is_(None),
        f.scope != Scope.TEMPORARY.value,
        f.status.in_(
            [FileStatus.READY.value, FileStatus.STORED.value, FileStatus.PROCESSING.value]
        ),
        f.type.is_not(None),  # its bytes were read (a file making its renditions stays found)
    ]


def _sqlite_search(query_words: list[str], account_id: str, limit: int) -> sa.Select[Any]:
    match = " OR ".join(f'"{w}"*' for w in query_words)
    index = sa.table("files_search", sa.column("rowid"))
    rank = sa.func.bm25(sa.literal_column("files_search"))
    return (
        sa.select(files)
        .join(index, index.c.rowid == f.seq)
        .where(sa.literal_column("files_search").op("MATCH")(match), *_searchable(account_id))
        .order_by(rank)
        .limit(limit)
    )


_PG_VECTOR: sa.ColumnElement[Any] = (
    sa.literal_column(  # exactly the expression of migration 0008's index
        "to_tsvector('simple', coalesce(files.display_name, '') || ' ' || "
        "coalesce(files.description, ''))"
    )
)


def _pg_search(query_words: list[str], account_id: str, limit: int) -> sa.Select[Any]:
    terms = " | ".join(f"{w}:*" for w in query_words)
    query = sa.func.to_tsquery(sa.literal_column("'simple'"), terms)
    return (
        sa.select(files)
        .where(_PG_VECTOR.op("@@")(query), *_searchable(account_id))
        .order_by(sa.func.ts_rank_cd(_PG_VECTOR, query).desc(), f.seq.desc())
        .limit(limit)
    )


async def search(conn: AsyncConnection, account_id: str, text: str, limit: int) -> list[Found]:
    """The account's searchable files that match the query, most similar first."""
    query_words = words(text)
    if not query_words:
        return []
    build = _pg_search if conn.dialect.name == "postgresql" else _sqlite_search
    rows = await conn.execute(build(query_words, account_id, min(500, limit * 5)))
    matches = [StoredFile.from_row(row) for row in rows]
    found = [Found(similarity(query_words, file), file) for file in matches]
    found.sort(key=lambda hit: -hit.similarity)  # stable: the index's rank breaks ties
    return found[:limit]


# --- the processing job --------------------------------------------------------------------


def _due(dialect: str, now: datetime) -> sa.ScalarSelect[Any]:
    query = (
        sa.select(f.seq)
        .where(
            f.status == FileStatus.PROCESSING.value,
            f.next_attempt_at <= now,
            sa.or_(f.lease_expires_at.is_(None), f.lease_expires_at < now),
        )
        .order_by(f.next_attempt_at)
        .limit(1)
    )
    return skip_locked(query, dialect).scalar_subquery()


async def claim(
    conn: AsyncConnection, owner: str, now: datetime, lease_until: datetime
) -> StoredFile | None:
    """Lease the file that has waited longest for processing, if any."""
    result = await conn.execute(
        files.update()
        .where(f.seq == _due(conn.dialect.name, now))
        .values(lease_owner=owner, lease_expires_at=lease_until, attempts=f.attempts + 1)
        .returning(*files.c)
    )
    row = result.first()
    return StoredFile.from_row(row) if row else None


async def finish(
    conn: AsyncConnection, file: StoredFile, now: datetime, **values: Any
) -> StoredFile | None:
    """End (or reschedule) a leased job; None if the lease went to another worker meanwhile."""
    result = await conn.execute(
        files.update()
        .where(
            f.id == file.id,
            f.status == FileStatus.PROCESSING.value,  # not if the janitor removed it meanwhile
            f.lease_owner == file.lease_owner,
            f.attempts == file.attempts,
        )
        .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
        .returning(*files.c)
    )
    row = result.first()
    return StoredFile.from_row(row) if row else None


async def renew(conn: AsyncConnection, file: StoredFile, until: datetime) -> bool:
    """Extend a job's lease while its worker still holds it."""
    result = await conn.execute(
        files.update()
        .where(f.id == file.id, f.lease_owner == file.lease_owner, f.attempts == file.attempts)
        .values(lease_expires_at=until)
    )
    return bool(result.rowcount)


async def next_due_at(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When a file can next be claimed (one in flight only once its lease lapses)."""
    free = sa.or_(f.lease_expires_at.is_(None), f.lease_expires_at < now)
    processing = f.status == FileStatus.PROCESSING.value
    due = sa.select(sa.func.min(f.next_attempt_at)).where(processing, free)
    leased = sa.select(sa.func.min(f.lease_expires_at)).where(processing, sa.not_(free))
    times = [(await conn.execute(q)).scalar_one_or_none() for q in (due, leased)]
    return min((t for t in times if t is not None), default=None)


# --- the janitor ---------------------------------------------------------------------------


async def expired_uploads(conn: AsyncConnection, now: datetime, limit: int) -> list[StoredFile]:
    rows = await conn.execute(
        sa.select(files)
        .where(f.status == FileStatus.UPLOADING.value, f.expires_at < now)
        .order_by(f.expires_at)
        .limit(limit)
    )
    return [StoredFile.from_row(row) for row in rows]


async def expired_temporary(conn: AsyncConnection, now: datetime, limit: int) -> list[StoredFile]:
    rows = await conn.execute(
        sa.select(files)
        .where(
            f.scope == Scope.TEMPORARY.value,
            f.expires_at < now,
            f.status.in_([FileStatus.READY.value, FileStatus.STORED.value]),
        )
        .order_by(f.expires_at)
        .limit(limit)
    )
    return [StoredFile.from_row(row) for row in rows]


async def uploading(conn: AsyncConnection, limit: int) -> list[StoredFile]:
    """Uploads still waiting for their bytes, oldest first."""
    rows = await conn.execute(
        sa.select(files).where(f.status == FileStatus.UPLOADING.value).order_by(f.seq).limit(limit)
    )
    return [StoredFile.from_row(row) for row in rows]


# --- the dashboard -------------------------------------------------------------------------


async def listing(
    conn: AsyncConnection,
    account_id: str,
    kind: FileType | None,
    archived: bool,
    limit: int,
    offset: int,
) -> tuple[list[StoredFile], bool]:
    """A page of the account's files as the dashboard lists them, most recently updated first:
    of one ``kind`` or all, archived ones too with ``archived``; and whether there are more."""
    query = sa.select(files).where(f.account_id == account_id)
    if kind is not None:
        query = query.where(f.type == kind.value)
    if not archived:
        query = query.where(f.archived_at.is_(None))
    query = query.order_by(f.updated_at.desc(), f.seq.desc()).limit(limit + 1).offset(offset)
    rows = (await conn.execute(query)).all()
    return [StoredFile.from_row(row) for row in rows[:limit]], len(rows) > limit
