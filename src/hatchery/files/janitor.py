"""The file janitor, on the workers, every ``HATCHERY_JANITOR_INTERVAL`` seconds:

- an upload whose bytes arrived in an S3-compatible store (which tells nobody) goes to processing;
- an upload whose URL expired with no bytes fails ("the upload URL expired"), which the
  account's endpoints hear of (``file.upload.failed``);
- a ``TEMPORARY`` file past its time (``HATCHERY_TEMPORARY_FILE_HOURS``, at least 24) has its
  objects removed from the store, and is archived with the reason as its error.

Every change is guarded by the file's ``updated_at``, so janitors on several workers, or a janitor
and a request, never undo each other's work. A store that is down leaves the rest for next time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from hatchery.domain.files import FileStatus, StoredFile
from hatchery.domain.webhooks import FILE_UPLOAD_FAILED
from hatchery.files.library import FileLibrary
from hatchery.storage import StorageUnavailable
from hatchery.store import files as store
from hatchery.store import outbox
from hatchery.store.db import utcnow
from hatchery.store.driver import EngineTx

log = logging.getLogger("hatchery.files")

BATCH = 200
UPLOAD_GRACE = timedelta(minutes=1)  # a PUT that began just before its URL expired may finish


@dataclass
class Swept:
    arrived: int = 0
    expired: int = 0
    removed: int = 0


class FileJanitor:
    def __init__(self, library: FileLibrary, interval: float) -> None:
        self.library = library
        self.interval = interval

    async def run(self) -> None:
        while True:
            try:
                swept = await self.sweep()
                if swept.arrived or swept.expired or swept.removed:
                    log.info("file janitor: %s", swept)
            except Exception:
                log.exception("the file janitor's sweep failed; trying again next interval")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> Swept:
        swept = Swept()
        try:
            if self.library.storage.kind != "local":
                swept.arrived = await self._arrivals()
            swept.expired = await self._expired_uploads()
            swept.removed = await self._expired_temporary()
        except StorageUnavailable as exc:
            log.warning("file janitor: the store is unavailable (%s); next interval", exc)
        return swept

    async def _arrivals(self) -> int:
        async with self.library.db.read() as conn:
            waiting = await store.uploading(conn, BATCH)
        found = 0
        for file in waiting:
            found += await self.library.arrived(file) is not None
        return found

    async def _expired_uploads(self) -> int:
        async with self.library.db.read() as conn:
            expired = await store.expired_uploads(conn, utcnow() - UPLOAD_GRACE, BATCH)
        count = 0
        for file in expired:
            if await self.library.arrived(file) is not None:  # the bytes came just in time
                continue
            count += await self._fail(file, "the upload URL expired before any bytes arrived")
        return count

    async def _expired_temporary(self) -> int:
        async with self.library.db.read() as conn:
            due = await store.expired_temporary(conn, utcnow(), BATCH)
        count = 0
        for file in due:
            if not await self._forget(file):  # changed meanwhile: next sweep
                continue
            count += 1
            await self.library.storage.delete_prefix(f"files/{file.id}/")
            if file.object_key and not file.object_key.startswith(f"files/{file.id}/"):
                await self.library.storage.delete(file.object_key)
        return count

    async def _fail(self, file: StoredFile, error: str) -> bool:
        """Failed, and ``file.upload.failed`` queued for the account's endpoints, at once."""
        now = utcnow()
        async with self.library.db.write() as conn:
            changed = await store.update(
                conn, file, now, status=FileStatus.FAILED.value, error=error
            )
            if changed is not None:
                await outbox.emit_outline(
                    EngineTx(conn),
                    account_id=file.account_id,
                    event=FILE_UPLOAD_FAILED,
                    subject_id=file.id,
                    now=now,
                )
        return changed is not None

    async def _forget(self, file: StoredFile) -> bool:
        hours = self.library.settings.temporary_file_hours
        async with self.library.db.write() as conn:
            changed = await store.update(
                conn,
                file,
                utcnow(),
                status=FileStatus.FAILED.value,
                error=f"a temporary file, removed {hours:g} hours after it was made",
                object_key=None,
                renditions={},
                playback_id=None,
                archived_at=file.archived_at or utcnow(),
            )
        return changed is not None
