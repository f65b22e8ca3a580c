"""The VideoGen API's objects: the file (``StorageFile``) from a stored file and its fresh links,
the tool execution (``ExecutedTool``) from a task, and the voices and presenters.

Besides the contract's fields it carries a few of ours, a compatible superset the vendor's SDK
keeps (its models allow extra keys): ``status`` (``uploading``, ``processing``, ``ready``,
``failed``), ``error`` (why a file failed), ``contentType``, ``fileBytes``, ``createdAt`` and
``updatedAt`` (Unix seconds, as the contract's other times).
"""

from __future__ import annotations

from typing import Any, Protocol

from hatchery.domain.files import STREAMABLE, SourceStatus, StoredFile
from hatchery.domain.moderation import MODERATION_ERROR
from hatchery.domain.money import format_cost
from hatchery.domain.tasks import Task, TaskStatus
from hatchery.domain.tools import TOOLS
from hatchery.files.library import Link
from hatchery.offline.avatar import Presenter


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
        "status": file.shown_status,
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


# ------------------------------------------------------------------------------- executions
EXECUTION_STATUS = {
    TaskStatus.PENDING: "pending",
    TaskStatus.PROCESSING: "running",
    TaskStatus.COMPLETED: "succeeded",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}


def execution_error(task: Task) -> dict[str, Any] | None:
    """A failed execution's ``ApiError``: ``content_moderated`` for a moderation refusal,
    ``execution_failed`` for anything else, with the reason."""
    if task.status is not TaskStatus.FAILED:
        return None
    message = task.error or "the execution failed"
    code = "content_moderated" if message == MODERATION_ERROR else "execution_failed"
    return {"message": message, "code": code}


def progress(task: Task) -> int:
    """0 while queued; while running, the share of the attempt's outputs the provider reports
    done, else 0; 100 once it succeeded."""
    if task.status is TaskStatus.COMPLETED:
        return 100
    reported = (task.upstream or {}).get("progress")
    if task.status is TaskStatus.PROCESSING and isinstance(reported, int | float):
        return max(0, min(99, int(reported)))
    return 0


def execution(task: Task, results: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The ``ExecutedTool`` object; ``results`` (each output's ``ToolSuccessResult``) only once
    it succeeded. Our additions, a compatible superset: ``createdAt``, ``startedAt``,
    ``completedAt`` (Unix seconds) and ``cost`` (dollars, as a string)."""
    tool = TOOLS.get(task.model)
    return {
        "toolExecutionId": task.id,
        "status": EXECUTION_STATUS[task.status],
        "toolType": tool.tool_type if tool else task.model.upper(),
        "progressPercentage": progress(task),
        "attemptIndex": max(task.attempt - 1, 0),
        "results": results if task.status is TaskStatus.COMPLETED else None,
        "error": execution_error(task),
        "createdAt": task.created_at.timestamp(),
        "startedAt": task.started_at.timestamp() if task.started_at else None,
        "completedAt": task.completed_at.timestamp() if task.completed_at else None,
        "cost": format_cost(task.cost_micros if task.status.terminal else task.price_micros),
    }


def result(file_id: str, kind: str | None, file: dict[str, Any] | None) -> dict[str, Any]:
    """One output as a ``ToolSuccessResult``: its file, hydrated, when it is shown."""
    return {"fileId": file_id, "type": file["type"] if file else kind, "file": file}


class ListedVoice(Protocol):
    """A voice as ``GET /v1/resources/tts-voices`` lists it: eSpeak NG's
    (:class:`~hatchery.offline.speech.Voice`) or an ElevenLabs account's
    (:class:`~hatchery.providers.elevenlabs.ElevenLabsVoice`)."""

    @property
    def voice_id(self) -> str: ...
    @property
    def language_code(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def gender(self) -> str: ...
    @property
    def accent(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def supports_direct_tool_execution(self) -> bool: ...
    @property
    def supports_all_languages(self) -> bool: ...
    @property
    def is_deprecated(self) -> bool: ...


def voice(v: ListedVoice) -> dict[str, Any]:
    return {
        "voiceId": v.voice_id,
        "languageCode": v.language_code,
        "displayName": v.display_name,
        "displayGender": v.gender,
        "accent": v.accent,
        "description": v.description,
        "supportsDirectToolExecution": v.supports_direct_tool_execution,
        "supportsAllLanguages": v.supports_all_languages,
        "isDeprecated": v.is_deprecated,
    }


def presenter(p: Presenter, public_url: str) -> dict[str, Any]:
    base = f"{public_url}/v1/resources/avatar-presenters/{p.presenter_id}"
    return {
        "avatarPresenterId": p.presenter_id,
        "displayableGender": p.gender,
        "imageUrl": f"{base}/image.png",
        "thumbnailUrl": f"{base}/thumbnail.png",
        "previewVideoUrl": f"{base}/preview.mp4",
        "displayName": p.name,
    }
