"""The VideoGen API's file object (``StorageFile``), from a stored file and its fresh links.

Besides the contract's fields it carries a few of ours, a compatible superset the vendor's SDK
keeps (its models allow extra keys): ``status`` (``uploading``, ``processing``, ``ready``,
``failed``), ``error`` (why a file failed), ``contentType``, ``fileBytes``, ``createdAt`` and
``updatedAt`` (Unix seconds, as the contract's other times).
"""

from __future__ import annotations

from typing import Any

from hatchery.domain.files import FileStatus, FileType, SourceStatus, StoredFile
from hatchery.files.library import Link

STREAMABLE = (FileType.VIDEO, FileType.AUDIO)


def _source(file: StoredFile, name: str, links: dict[str, Link]) -> dict[str, Any]:
    status = file.source_status(name)
    link = links.get(name)
    if name == "download":
        size = {"width": file.width, "height": file.height, "fileBytes": file.bytes}
    else:
        rendition = file.renditions.get(name) or {}
        size = {
            "width": rendition.get("width"),
            "height": rendition.get("height"),
            "fileBytes": rendition.get("bytes"),
        }
    return {
        "status": status.value,
        "url": link.url if link and status == SourceStatus.READY else None,
        "expiresAt": link.expires_at if link and status == SourceStatus.READY else None,
        **size,
    }


def _hls(file: StoredFile, links: dict[str, Link]) -> dict[str, Any] | None:
    link = links.get("hls")
    if link is None:
        return None
    return {"status": "ready", "url": link.url, "expiresAt": link.expires_at}


def storage_file(file: StoredFile, links: dict[str, Link], public_url: str) -> dict[str, Any]:
    playback = file.playback_id
    public_hls = (
        f"{public_url}/public/{playback}/index.m3u8"
        if playback and file.type in STREAMABLE
        else None
    )
    body: dict[str, Any] = {
        "fileId": file.id,
        "type": file.type.value if file.type else None,
        "scope": file.scope.value,
        "displayName": file.display_name,
        "description": file.description,
        "durationSeconds": file.duration_seconds,
        "transcript": None,
        "thumbnailSource": _source(file, "thumbnail", links),
        "previewSource": _source(file, "preview", links),
        "downloadSource": _source(file, "download", links),
        "hlsSource": _hls(file, links),
        "isPublicPreviewEnabled": playback is not None,
        "publicHlsUrl": public_hls,
        "publicPlaybackId": playback,
        "status": "ready" if file.status == FileStatus.STORED else file.status.value,
        "error": file.error,
        "contentType": file.content_type,
        "fileBytes": file.bytes,
        "createdAt": file.created_at.timestamp(),
        "updatedAt": file.updated_at.timestamp(),
    }
    if file.tool_type:
        body["sourceToolType"] = file.tool_type
        body["sourceToolExecutionId"] = file.task_id
    return body
