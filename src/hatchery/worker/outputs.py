"""What happens to a task's outputs between the provider and the store, whoever made them: the
visible watermark a tool execution asked for, and each output's file record (written with the
task's completion, in its transaction).

A record is ``stored``: its thumbnail and preview are made once the VideoGen API first reads it.
An execution's outputs carry its tool's type and, when it asked for temporary outputs, scope
``TEMPORARY`` and the time they may be removed after.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from hatchery.domain.files import FileStatus, FileType, Scope, new_file_id
from hatchery.domain.tasks import Task, TaskType
from hatchery.domain.tools import TOOLS
from hatchery.offline import watermark
from hatchery.providers.base import Artifact, Finished, Job
from hatchery.storage import CONTENT_TYPES
from hatchery.store.db import utcnow

DISPLAY_NAME_CHARS = 200
MARKING_AT_ONCE = 2  # outputs watermarked at once (each a thread: a video is re-encoded)


@dataclass(frozen=True)
class OutputPolicy:
    watermark_text: str = "Hatchery"
    temporary_hours: float = 24.0

    async def finish(self, task: Task, result: Finished) -> Finished:
        """The outputs as they are stored: marked when the execution asked for a watermark."""
        if task.type is not TaskType.TOOL or not task.params.get("watermark"):
            return result
        slots = asyncio.Semaphore(MARKING_AT_ONCE)
        done: dict[int, asyncio.Task[Artifact]] = {}  # the same output given N times: marked once

        async def mark(artifact: Artifact) -> Artifact:
            async with slots:
                return await asyncio.to_thread(watermark.mark, artifact, self.watermark_text)

        try:
            async with asyncio.TaskGroup() as group:
                for artifact in result.artifacts:
                    if id(artifact) not in done:
                        done[id(artifact)] = group.create_task(mark(artifact))
        except ExceptionGroup as failed:  # the first failure (ValueError: cannot be marked)
            raise failed.exceptions[0] from None
        return replace(result, artifacts=[done[id(a)].result() for a in result.artifacts])

    def files(
        self, task: Task, job: Job, result: Finished, keys: list[str]
    ) -> list[dict[str, Any]]:
        """The file record of each output."""
        now = utcnow()
        temporary = bool(task.params.get("temporary"))
        expires = now + timedelta(hours=self.temporary_hours) if temporary else None
        tool = TOOLS.get(task.model) if task.type is TaskType.TOOL else None
        prompt = str(task.params.get("prompt") or "").strip()
        name = prompt or (f"{tool.tool_type} result" if tool else f"{task.model} output")
        records: list[dict[str, Any]] = []
        for index, (artifact, key) in enumerate(zip(result.artifacts, keys, strict=True)):
            content_type = CONTENT_TYPES[artifact.extension]
            kind = FileType.of_content_type(content_type)
            shown = name if len(keys) == 1 else f"{name} ({index + 1})"
            records.append(
                {
                    "id": new_file_id(),
                    "account_id": task.account_id,
                    "status": FileStatus.STORED.value,
                    "type": kind.value,
                    "scope": (Scope.TEMPORARY if temporary else Scope.GLOBAL).value,
                    "display_name": shown[:DISPLAY_NAME_CHARS],
                    "description": _description(prompt, artifact.description),
                    "content_type": content_type,
                    "bytes": len(artifact.data),
                    "width": artifact.width,
                    "height": artifact.height,
                    "duration_seconds": artifact.seconds if kind != FileType.IMAGE else None,
                    "object_key": key,
                    "renditions": {},
                    "task_id": task.id,
                    "tool_type": tool.tool_type if tool else None,
                    "created_at": now,
                    "updated_at": now,
                    "expires_at": expires,
                    "next_attempt_at": None,
                }
            )
        return records


def _description(prompt: str, made_by: str | None) -> str | None:
    """The prompt, and what made the file when the provider says (the local tools do)."""
    if prompt and made_by:
        return f"{prompt} \u2014 {made_by}"
    return made_by or prompt or None
