"""The file library: what the APIs do with files, over the files table and the object store.

Each operation is a few store calls and, where bytes are concerned, a call to the object store;
neither knows a wire format. Errors are the domain's (``hatchery.errors``): another account's file
is :class:`~hatchery.errors.NotFound`, a malformed id :class:`~hatchery.errors.InvalidId`, an object
store that does not answer :class:`~hatchery.errors.ObjectStoreUnavailable` (nothing recorded).

Uploads: ``create_upload`` records the file (``uploading``) and signs a PUT URL for
``uploads/<id>``. The bytes go straight to the store. Hatchery learns that they arrived from its
own upload route (local store: ``receive_upload``), or, on S3, by looking (``arrived``): on every
read of an uploading file and in every janitor sweep. Once they have, the file is ``processing``
and a worker takes it (``files.ingest``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hatchery.domain.files import (
    USABLE,
    FileStatus,
    FileType,
    Scope,
    SourceStatus,
    StoredFile,
    is_file_id,
    new_file_id,
    new_playback_id,
    upload_key,
)
from hatchery.domain.tools import InputFile
from hatchery.errors import (
    BadRequest,
    Conflict,
    FileNotReady,
    InvalidId,
    NotFound,
    ObjectStoreUnavailable,
    WrongFileType,
)
from hatchery.settings import Settings
from hatchery.storage import ObjectStore, StorageUnavailable, UrlSigner
from hatchery.store import files as store
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import FILES, Notifier

log = logging.getLogger("hatchery.files")


@dataclass(frozen=True)
class Link:
    """A signed URL to one of a file's sources, and when it stops working (Unix seconds)."""

    url: str
    expires_at: int


@contextlib.asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """The object store's failure as the domain's: 503, try again later."""
    try:
        yield
    except StorageUnavailable as exc:
        log.warning("the file store is unavailable: %s", exc)  # where and why: for operators
        raise ObjectStoreUnavailable(
            "The file store is unavailable; nothing was changed, try again shortly"
        ) from None


def check_id(file_id: str) -> None:
    if not is_file_id(file_id):
        raise InvalidId(f"{file_id!r} is not a file id; file ids look like vg_file_...")


class FileLibrary:
    def __init__(
        self,
        db: Database,
        storage: ObjectStore,
        signer: UrlSigner,
        notifier: Notifier,
        settings: Settings,
    ) -> None:
        self.db = db
        self.storage = storage
        self.signer = signer
        self.notifier = notifier
        self.settings = settings

    # --- records -------------------------------------------------------------------------

    async def create_upload(
        self, account_id: str, display_name: str, kind: FileType | None, temporary: bool
    ) -> tuple[StoredFile, str]:
        """A new file waiting for its bytes, and the URL to PUT them to."""
        now, file_id = utcnow(), new_file_id()
        ttl = self.settings.upload_url_seconds
        async with storage_errors():
            url = await self.storage.signed_put_url(upload_key(file_id), ttl)
        values: dict[str, object] = {
            "id": file_id,
            "account_id": account_id,
            "status": FileStatus.UPLOADING.value,
            "requested_type": kind.value if kind else None,
            "scope": (Scope.TEMPORARY if temporary else Scope.GLOBAL).value,
            "display_name": display_name,
            "renditions": {},
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }
        async with self.db.write() as conn:
            file = await store.insert(conn, values)
        return file, url

    async def get(self, account_id: str, file_id: str) -> StoredFile:
        """The account's file (archived ones included); NotFound for anyone else's."""
        check_id(file_id)
        file = await self.get_record(account_id, file_id)
        if file is None:
            raise NotFound(f"File not found: {file_id}")
        return await self._ask_renditions(file)

    async def input(self, account_id: str, file_id: str, field: str, kind: FileType) -> InputFile:
        """The account's file as a tool's input in ``field``: its bytes stored and of ``kind``.
        InvalidId, NotFound, FileNotReady (still uploading or processing), WrongFileType, each
        naming the field."""
        if not is_file_id(file_id):
            raise InvalidId(
                f"{field}: {file_id!r} is not a file id; file ids look like vg_file_..."
            )
        file = await self.get_record(account_id, file_id)
        if file is None:
            raise NotFound(f"{field}: file not found: {file_id}")
        if file.status == FileStatus.FAILED:
            raise WrongFileType(
                f"{field}: file {file_id} could not be processed ({file.error}); upload it again"
            )
        if file.source_status("download") != SourceStatus.READY or not file.object_key:
            raise FileNotReady(
                f"{field}: file {file_id} is still being {file.status.value}; wait until its "
                "downloadSource is ready (GET /v1/files/{fileId}), then try again"
            )
        if file.type != kind:
            raise WrongFileType(
                f"{field}: file {file_id} is {file.type.value if file.type else 'of no known type'}"
                f", but {'an' if kind.value[0] in 'AEIOU' else 'a'} {kind.value} file is needed"
            )
        return InputFile(
            file_id=file.id,
            key=file.object_key,
            type=kind.value,
            content_type=file.content_type or "",
            seconds=file.duration_seconds,
            width=file.width,
            height=file.height,
        )

    async def get_record(self, account_id: str, file_id: str) -> StoredFile | None:
        """The account's file as stored, looking at an S3 upload that may have arrived."""
        async with self.db.read() as conn:
            file = await store.get(conn, file_id, account_id)
        if (
            file is not None
            and file.status == FileStatus.UPLOADING
            and self.storage.kind != "local"
        ):
            file = await self.arrived(file) or file
        return file

    async def _ask_renditions(self, file: StoredFile) -> StoredFile:
        """A task output read by id for the first time has its renditions made (it shows as
        processing until they are); lists and search leave them pending."""
        if file.status != FileStatus.STORED:
            return file
        async with self.db.write() as conn:
            await store.want_renditions(conn, [file.id], utcnow())
        self.notifier.notify(FILES)
        return replace(file, status=FileStatus.PROCESSING)

    async def page(
        self, account_id: str, limit: int | None, after: tuple[datetime, int] | None
    ) -> tuple[list[StoredFile], tuple[datetime, int] | None]:
        """A page of the account's files (all of them with no ``limit``)."""
        async with self.db.read() as conn:
            return await store.page(conn, account_id, limit, after)

    async def search(self, account_id: str, query: str, limit: int) -> list[store.Found]:
        async with self.db.read() as conn:
            return await store.search(conn, account_id, query, limit)

    async def archive(self, account_id: str, file_id: str) -> StoredFile:
        """Out of lists and search for good; still readable by id, its URLs still work."""
        file = await self.get(account_id, file_id)
        if file.archived_at is not None:
            return file
        return await self._change(file, archived_at=utcnow())

    async def set_public_preview(self, account_id: str, file_id: str, on: bool) -> StoredFile:
        """Public preview on (a playback id, and an HLS rendition made by the workers) or off.
        Video and audio only; a file still being processed cannot have it yet."""
        file = await self.get(account_id, file_id)
        if not on:
            return file if file.playback_id is None else await self._change(file, playback_id=None)
        if file.status == FileStatus.FAILED:
            raise BadRequest(f"File {file_id} failed ({file.error}); it has nothing to preview")
        if file.type is None or file.status not in USABLE:
            raise Conflict(f"File {file_id} is still {file.status.value}; try once it is ready")
        if file.type not in (FileType.VIDEO, FileType.AUDIO):
            kind = file.type.value.lower()
            raise BadRequest(f"Public preview is for video and audio files; this is an {kind}")
        if file.playback_id is not None:
            return file
        values: dict[str, object] = {"playback_id": new_playback_id(), "attempts": 0}
        hls = file.renditions.get("hls") or {}
        if hls.get("status") != SourceStatus.READY.value:  # a worker makes it, then it plays
            pending = {"status": SourceStatus.PENDING.value}
            values.update(
                renditions={**file.renditions, "hls": pending},
                status=FileStatus.PROCESSING.value,
                next_attempt_at=utcnow(),
            )
        changed = await self._change(file, **values)
        self.notifier.notify(FILES)
        return changed

    async def any(self, file_id: str) -> StoredFile | None:
        """A file by id, whoever's it is (for URLs that carry their own authority)."""
        async with self.db.read() as conn:
            return await store.get(conn, file_id)

    async def enable_public_preview(self, account_id: str, file_id: str) -> StoredFile:
        return await self.set_public_preview(account_id, file_id, True)

    async def disable_public_preview(self, account_id: str, file_id: str) -> StoredFile:
        return await self.set_public_preview(account_id, file_id, False)

    async def by_playback_id(self, playback_id: str) -> StoredFile | None:
        async with self.db.read() as conn:
            return await store.by_playback_id(conn, playback_id)

    async def _change(self, file: StoredFile, **values: object) -> StoredFile:
        async with self.db.write() as conn:
            changed = await store.update(conn, file, utcnow(), **values)
        if changed is None:
            raise Conflict(f"File {file.id} changed while this request ran; try again")
        return changed

    # --- uploads -------------------------------------------------------------------------

    async def uploading(self, file_id: str) -> StoredFile:
        """The file an upload URL is for, if it still takes bytes (Conflict once it has them)."""
        async with self.db.read() as conn:
            file = await store.get(conn, file_id)
        if file is None:
            raise NotFound(f"File not found: {file_id}")
        if file.status == FileStatus.FAILED:
            raise Conflict(f"File {file_id} takes no more bytes: {file.error}")
        if file.status != FileStatus.UPLOADING:
            raise Conflict(
                f"File {file_id} has already received its bytes; create a new upload to send "
                "other ones"
            )
        return file

    async def receive_upload(self, file: StoredFile, size: int) -> StoredFile | None:
        """The bytes are in the store: the file goes to processing (None if it was no longer
        waiting for them, e.g. a second PUT racing the first)."""
        now = utcnow()
        async with self.db.write() as conn:
            changed = await store.arrive(conn, file.id, size, now, self._kept_until(file, now))
        if changed is not None:
            self.notifier.notify(FILES)
        return changed

    async def arrived(self, file: StoredFile) -> StoredFile | None:
        """Look in the store for an upload's bytes; the file in processing if they are there."""
        async with storage_errors():
            info = await self.storage.head(upload_key(file.id))
        if info is None:
            return None
        return await self.receive_upload(file, info.size)

    def _kept_until(self, file: StoredFile, now: datetime) -> datetime | None:
        if file.scope != Scope.TEMPORARY:
            return None
        return now + timedelta(hours=self.settings.temporary_file_hours)

    # --- signed URLs ---------------------------------------------------------------------

    async def links(self, file: StoredFile) -> dict[str, Link]:
        """Fresh signed URLs to each source that is ready (``download`` is the original)."""
        ttl = self.settings.signed_url_seconds
        expires_at = int(time.time()) + ttl
        links: dict[str, Link] = {}
        async with storage_errors():
            for name, key, content_type in _ready_objects(file):
                url = await self.storage.signed_get_url(key, ttl, content_type)
                links[name] = Link(url, expires_at)
        if (file.renditions.get("hls") or {}).get("status") == SourceStatus.READY.value:
            url = self.signer.url("GET", f"{file.id}/index.m3u8", ttl, path="/hls/")
            links["hls"] = Link(url, expires_at)
        return links


def _ready_objects(file: StoredFile) -> list[tuple[str, str, str | None]]:
    """(source name, object key, content type) of each source that can be fetched now."""
    ready = []
    if file.source_status("download") == SourceStatus.READY and file.object_key:
        ready.append(("download", file.object_key, file.content_type))
    for name in ("thumbnail", "preview"):
        rendition = file.renditions.get(name) or {}
        if rendition.get("status") == SourceStatus.READY.value:
            ready.append((name, rendition["key"], rendition.get("content_type")))
    return ready
