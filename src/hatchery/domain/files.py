"""Files as records: what a stored file is, whichever API shows it.

A file is an upload or a task's output. Its life::

    uploading ──(bytes arrive)──────> processing ──> ready
        │                                 │ ▲
        │                                 ▼ │(first read by the VideoGen API)
        └──(URL expires, no bytes)──> failed   stored  <── a task's output

An upload starts in ``uploading``. A task's output starts ``stored``: its bytes, type and size
are known and it can be downloaded, but its renditions are made only once the VideoGen API first
reads it (the Egg API never shows them, so a task pays nothing for them). Processing reads what
the bytes are (never from the name), records type, size, dimensions and duration, and makes the
renditions: ``thumbnail``, ``preview`` and, once a public preview asks for it, ``hls``. Each
rendition is ``pending``, ``ready``, ``failed`` or ``skipped`` (it does not apply: no thumbnail
for audio). A file that is not media, or larger than the limit, fails.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

FILE_PREFIX = "vg_file_"
PLAYBACK_PREFIX = "vg_play_"
_ID = re.compile(r"vg_file_[A-Za-z0-9_-]{8,40}")
_PLAYBACK = re.compile(r"vg_play_[A-Za-z0-9_-]{8,40}")


class FileStatus(StrEnum):
    UPLOADING = "uploading"
    STORED = "stored"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


USABLE = (FileStatus.READY, FileStatus.STORED)  # the original can be read and shown


class FileType(StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"

    @classmethod
    def of_content_type(cls, content_type: str) -> FileType:
        """The type of a file of this content type (``image/png``: IMAGE)."""
        return {"image": cls.IMAGE, "video": cls.VIDEO}.get(content_type.split("/")[0], cls.AUDIO)


STREAMABLE = (FileType.VIDEO, FileType.AUDIO)  # what a public preview (HLS) can be made of


class Scope(StrEnum):
    GLOBAL = "GLOBAL"
    TEMPORARY = "TEMPORARY"


class SourceStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    SKIPPED = "skipped"


def new_file_id() -> str:
    return FILE_PREFIX + secrets.token_urlsafe(16)  # 22 characters, as the vendor's


def new_playback_id() -> str:
    return PLAYBACK_PREFIX + secrets.token_urlsafe(16)


def is_file_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def is_playback_id(value: str) -> bool:
    return bool(_PLAYBACK.fullmatch(value))


def upload_key(file_id: str) -> str:
    return f"uploads/{file_id}"


def file_key(file_id: str, name: str) -> str:
    return f"files/{file_id}/{name}"


@dataclass(frozen=True)
class StoredFile:
    id: str
    account_id: str
    status: FileStatus
    type: FileType | None
    scope: Scope
    display_name: str
    description: str | None
    content_type: str | None
    bytes: int | None
    width: int | None
    height: int | None
    duration_seconds: float | None
    object_key: str | None
    renditions: dict[str, dict[str, Any]]
    error: str | None
    task_id: str | None
    tool_type: str | None
    playback_id: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    expires_at: datetime | None
    requested_type: FileType | None = None
    attempts: int = 0
    lease_owner: str | None = field(default=None, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> StoredFile:
        m = row if isinstance(row, dict) else row._mapping
        kind, requested = m["type"], m["requested_type"]
        return cls(
            id=m["id"],
            account_id=m["account_id"],
            status=FileStatus(m["status"]),
            type=FileType(kind) if kind else None,
            scope=Scope(m["scope"]),
            display_name=m["display_name"],
            description=m["description"],
            content_type=m["content_type"],
            bytes=m["bytes"],
            width=m["width"],
            height=m["height"],
            duration_seconds=m["duration_seconds"],
            object_key=m["object_key"],
            renditions=dict(m["renditions"] or {}),
            error=m["error"],
            task_id=m["task_id"],
            tool_type=m["tool_type"],
            playback_id=m["playback_id"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            archived_at=m["archived_at"],
            expires_at=m["expires_at"],
            requested_type=FileType(requested) if requested else None,
            attempts=m["attempts"],
            lease_owner=m["lease_owner"],
        )

    @property
    def shown_status(self) -> str:
        """The status the APIs and the dashboard show: a task's output whose renditions are
        not made yet (``stored``) is ``ready`` already."""
        return FileStatus.READY.value if self.status == FileStatus.STORED else self.status.value

    def source_status(self, name: str) -> SourceStatus:
        """Where a rendition stands (``download`` is the original)."""
        if self.status == FileStatus.FAILED:
            return SourceStatus.FAILED
        if name == "download":
            ready = self.status in USABLE or (
                self.status == FileStatus.PROCESSING and self.type is not None
            )
            return SourceStatus.READY if ready and self.object_key else SourceStatus.PENDING
        rendition = self.renditions.get(name)
        if rendition is None:
            return SourceStatus.PENDING
        return SourceStatus(rendition["status"])
