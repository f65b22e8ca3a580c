"""Processing files, on the workers: a durable job kept on the file's own row.

A file in ``processing`` is claimed with a lease (``store.files.claim``). The worker copies its
bytes to a scratch directory, reads what they are (``hatchery.media``, from the bytes, never from
the name), stores an upload as ``files/<id>/original``, makes the thumbnail and the preview and
stores them, and records it all in one guarded update. Every object it writes has a fixed key, so
a worker that crashes half-way leaves nothing that the next attempt (after the lease lapses) does
not overwrite; an upload's bytes are removed only after the record says the file is ready or
failed. An object store that is down reschedules the job with a backoff, with nothing lost.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from hatchery import media
from hatchery.domain import webhooks as hooks
from hatchery.domain.files import (
    FileStatus,
    FileType,
    SourceStatus,
    StoredFile,
    file_key,
    upload_key,
)
from hatchery.storage import ObjectMissing, ObjectStore, StorageUnavailable
from hatchery.store import files as store
from hatchery.store import outbox
from hatchery.store.db import Database, utcnow
from hatchery.store.driver import EngineTx
from hatchery.store.notify import FILES, WEBHOOKS, Notifier

log = logging.getLogger("hatchery.files")

MAX_ATTEMPTS = 8
BACKOFF_CAP = 300.0


class Refused(Exception):
    """The file cannot be used: the message says why, for its owner."""


class Unreadable(Refused):
    """Its bytes are not media of a kind we read, or not of the type declared (the file's
    analysis failed, besides its upload)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    lease_seconds: float = 300.0
    poll_interval: float = 2.0


class FileProcessor:
    def __init__(
        self,
        db: Database,
        storage: ObjectStore,
        notifier: Notifier,
        *,
        owner: str,
        limits: Limits,
        scratch: Path | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.notifier = notifier
        self.owner = owner
        self.limits = limits
        self.scratch = scratch

    async def run(self) -> None:
        """Process files until cancelled, one at a time (transcoding is CPU work)."""
        while True:
            try:
                if not await self.process_one():
                    await self.notifier.wait(FILES, await self._idle_for())
            except Exception:  # the database unreachable, say: wait, then carry on
                log.exception("file processing failed unexpectedly; trying again shortly")
                await asyncio.sleep(self.limits.poll_interval)

    async def process_one(self) -> bool:
        """Claim one due file and process it; False when none was due."""
        now = utcnow()
        async with self.db.write() as conn:
            lease = now + timedelta(seconds=self.limits.lease_seconds)
            file = await store.claim(conn, self.owner, now, lease)
        if file is None:
            return False
        keeper = asyncio.create_task(self.keep_lease(file), name=f"lease of {file.id}")
        try:
            await self._process(file)
        finally:
            keeper.cancel()
        return True

    async def keep_lease(self, file: StoredFile) -> None:
        """Renew the lease every third of it while a long file (a video) is being processed."""
        every = self.limits.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            until = utcnow() + timedelta(seconds=self.limits.lease_seconds)
            try:
                async with self.db.write() as conn:
                    if not await store.renew(conn, file, until):
                        return
            except Exception as exc:  # the next renewal may get through before the lease lapses
                log.warning("file %s: renewing its lease failed: %s", file.id, exc)

    async def _idle_for(self) -> float:
        async with self.db.read() as conn:
            due = await store.next_due_at(conn, utcnow())
        if due is None:
            return self.limits.poll_interval
        wait = (due - utcnow()).total_seconds()
        return max(0.05, min(self.limits.poll_interval, wait))

    async def _process(self, file: StoredFile) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="hatchery-file-", dir=self.scratch))
        unreadable = False
        try:
            values = await self._make(file, workdir)
        except Refused as exc:
            values = _refused(file, str(exc))
            unreadable = isinstance(exc, Unreadable)
        except StorageUnavailable as exc:  # waits for the store as long as it takes
            values = self._later(file, f"the file store was unavailable ({exc})", give_up=False)
        except Exception as exc:  # a fault of ours: try again later, and give up in the end
            log.exception("file %s: processing failed", file.id)
            why = f"the file could not be processed ({type(exc).__name__})"
            values = self._later(file, why, give_up=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        await self._finish(file, values, unreadable)

    def _later(self, file: StoredFile, why: str, *, give_up: bool) -> dict[str, Any]:
        """Try again after a backoff; with ``give_up``, after ``MAX_ATTEMPTS`` the job ends as
        :func:`_refused` does, with ``why``."""
        if give_up and file.attempts >= MAX_ATTEMPTS:
            return _refused(file, f"{why}, {file.attempts} times")
        delay = min(BACKOFF_CAP, 5.0 * 2 ** (file.attempts - 1))
        log.warning("file %s: %s; again in %.0f s", file.id, why, delay)
        return {"next_attempt_at": utcnow() + timedelta(seconds=delay)}

    async def _finish(
        self, file: StoredFile, values: dict[str, Any], unreadable: bool = False
    ) -> None:
        """Record the job's end and, for an upload that has ended, its webhook events, in one
        transaction."""
        is_upload = file.object_key is None
        now = utcnow()
        async with self.db.write() as conn:
            done = await store.finish(conn, file, now, **values)
            ended = done is not None and done.status in (FileStatus.READY, FileStatus.FAILED)
            messages = 0
            if is_upload and done is not None and ended:
                for event in upload_events(done, unreadable):
                    messages += await outbox.emit_outline(
                        EngineTx(conn),
                        account_id=done.account_id,
                        event=event,
                        subject_id=done.id,
                        now=now,
                    )
        if done is None:
            log.warning("file %s: the lease went to another worker; its result is dropped", file.id)
            return
        if messages:
            self.notifier.notify(WEBHOOKS)
        if is_upload and ended:
            await self._drop_upload(done)
        log.info("file %s is %s", done.id, done.status.value)

    async def _drop_upload(self, file: StoredFile) -> None:
        try:
            await self.storage.delete(upload_key(file.id))
        except StorageUnavailable as exc:  # left for the bucket's lifecycle rule (docs)
            log.warning("file %s: its upload object stays for now: %s", file.id, exc)

    async def _make(self, file: StoredFile, workdir: Path) -> dict[str, Any]:
        """What the file's record becomes once its bytes are read and its renditions made."""
        source, key = await self._fetch(file, workdir)
        info = await _inspect(source)
        _check_type(file, info)
        original = key if file.object_key else file_key(file.id, "original")
        if original != key:
            await self.storage.put_file(original, source, info.content_type)
        renditions = await self._renditions(file, source, info, workdir)
        return {
            "status": FileStatus.READY.value,
            "type": info.kind,
            "content_type": info.content_type,
            "bytes": source.stat().st_size,
            "width": info.width,
            "height": info.height,
            "duration_seconds": info.duration_seconds,
            "object_key": original,
            "renditions": renditions,
            "error": None,
        }

    async def _fetch(self, file: StoredFile, workdir: Path) -> tuple[Path, str]:
        """The file's bytes in the scratch directory, and the key they came from."""
        keys = (
            [file.object_key]
            if file.object_key
            else [
                upload_key(file.id),
                file_key(file.id, "original"),  # a crash after the copy, before the record
            ]
        )
        for key in keys:
            info = await self.storage.head(key)
            if info is None:
                continue
            if info.size > self.limits.max_bytes and not file.object_key:  # an upload
                raise Refused(
                    f"the file is {info.size} bytes; this server takes files of at most "
                    f"{self.limits.max_bytes} bytes"
                )
            path = workdir / "source"
            try:
                await self.storage.download(key, path)
            except ObjectMissing:
                continue
            return path, key
        raise Refused("the file's bytes are missing from the store")

    async def _renditions(
        self, file: StoredFile, source: Path, info: media.MediaInfo, workdir: Path
    ) -> dict[str, dict[str, Any]]:
        """The renditions still to make (all on the first run; only the HLS rendition when a
        public preview asks for it later)."""
        made = dict(file.renditions)
        for name, make in (("thumbnail", media.thumbnail), ("preview", media.preview)):
            if name not in made:
                made[name] = await self._rendition(file, name, make, source, info, workdir)
        if made.get("hls", {}).get("status") == SourceStatus.PENDING.value:
            made["hls"] = await self._hls(file, source, info, workdir)
        return made

    async def _hls(
        self, file: StoredFile, source: Path, info: media.MediaInfo, workdir: Path
    ) -> dict[str, Any]:
        out = workdir / "hls"
        out.mkdir()
        try:
            playlist = await asyncio.to_thread(media.hls, source, info, out)
        except Exception as exc:
            log.warning("file %s: the HLS rendition could not be made: %s", file.id, exc)
            return {"status": SourceStatus.FAILED.value, "error": str(exc)[:300]}
        prefix = file_key(file.id, "hls")
        for part in sorted(out.iterdir()):
            kind = "application/vnd.apple.mpegurl" if part == playlist else "video/mp2t"
            await self.storage.put_file(f"{prefix}/{part.name}", part, kind)
        return {
            "status": SourceStatus.READY.value,
            "key": f"{prefix}/{playlist.name}",
            "content_type": "application/vnd.apple.mpegurl",
        }

    async def _rendition(
        self,
        file: StoredFile,
        name: str,
        make: Callable[[Path, media.MediaInfo, Path], media.Rendition | None],
        source: Path,
        info: media.MediaInfo,
        workdir: Path,
    ) -> dict[str, Any]:
        out = workdir / name
        out.mkdir()
        try:
            made: media.Rendition | None = await asyncio.to_thread(make, source, info, out)
        except Exception as exc:  # a rendition that fails leaves the file usable
            log.warning("file %s: the %s could not be made: %s", file.id, name, exc)
            return {"status": SourceStatus.FAILED.value, "error": str(exc)[:300]}
        if made is None:
            return {"status": SourceStatus.SKIPPED.value}
        key = file_key(file.id, name)
        await self.storage.put_file(key, made.path, made.content_type)
        return {
            "status": SourceStatus.READY.value,
            "key": key,
            "content_type": made.content_type,
            "width": made.width,
            "height": made.height,
            "bytes": made.size,
        }


def _refused(file: StoredFile, why: str) -> dict[str, Any]:
    """How a job that cannot be done ends: a file whose bytes were never read fails; one already
    usable (a task output, or a ready file asked for its HLS stream) stays so, and only the
    renditions still pending fail."""
    if file.type is None:
        return {"status": FileStatus.FAILED.value, "error": why}
    failed = {"status": SourceStatus.FAILED.value, "error": why[:300]}
    renditions = dict(file.renditions)
    for name in ("thumbnail", "preview", *file.renditions):
        if (renditions.get(name) or {}).get("status", "pending") == "pending":
            renditions[name] = failed
    return {"status": FileStatus.READY.value, "renditions": renditions}


async def _inspect(path: Path) -> media.MediaInfo:
    try:
        return await asyncio.to_thread(media.inspect, path)
    except media.NotMedia as exc:
        raise Unreadable(str(exc)) from None


def _check_type(file: StoredFile, info: media.MediaInfo) -> None:
    wanted = file.requested_type
    if wanted is not None and wanted != FileType(info.kind):
        raise Unreadable(
            f"the upload was declared {wanted.value} but its bytes are {info.kind.lower()} "
            f"({info.content_type}); upload it again with type {info.kind} or without a type"
        )


def upload_events(file: StoredFile, unreadable: bool) -> list[str]:
    """What an upload's end tells its account's endpoints: received and read, downloadable,
    and (a video or audio file whose preview was made) playable; or failed, and, when its bytes
    could not be read as media of the declared type, its analysis failed too."""
    if file.status is FileStatus.FAILED:
        return [hooks.FILE_UPLOAD_FAILED, *([hooks.FILE_ANALYSIS_FAILED] if unreadable else [])]
    events = [hooks.FILE_UPLOAD_COMPLETED, hooks.FILE_ANALYSIS_COMPLETED, hooks.FILE_DOWNLOAD_READY]
    playable = file.type in (FileType.VIDEO, FileType.AUDIO)
    if playable and file.source_status("preview") is SourceStatus.READY:
        events.append(hooks.FILE_PLAYBACK_READY)
    return events
