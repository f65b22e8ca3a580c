"""The built-in ``local`` provider: a procedural renderer and classical algorithms, not AI models.

For the Egg models it draws deterministic gradients and shapes with the prompt written on them
(PNG) and animates them into H.264 MP4 files, so the whole product runs offline with no GPU and
no vendor account. Reference images in ``image_urls`` are fetched through the outbound URL guard
and drawn in. For the VideoGen tools it reads the input files from the object store and makes
each output with ``providers.local_tools``, up to ``parallel`` outputs at once across all the
executions of this process (each in a thread: the algorithms are CPU work).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from PIL import Image

from hatchery.domain.tools import SAME_EACH_TIME
from hatchery.domain.voices import elevenlabs_voice
from hatchery.providers import local_tools, render
from hatchery.providers.base import (
    IMAGE_SIZES,
    Artifact,
    Finished,
    Job,
    Running,
    fixed_route,
)
from hatchery.providers.inputs import InputFiles, Read
from hatchery.providers.media import Fetch, ReferenceFailure, fetch_reference


class LocalProvider:
    name = "local"

    def __init__(self, fetch: Fetch, read: Read | None = None, parallel: int = 1) -> None:
        self._fetch = fetch
        self._files = InputFiles(read) if read is not None else None
        self._slots = asyncio.Semaphore(max(parallel, 1))
        self._speech = asyncio.Semaphore(1)

    def serves(self, model: str) -> bool:
        return True

    def route_problem(self, model: str, route: str | None) -> str | None:
        return fixed_route(self.name, route)

    def unsupported(self, job: Job) -> str | None:
        voice = job.options.get("voice_id") if job.tool == "text-to-speech" else None
        if elevenlabs_voice(voice) is not None:
            return f"voice {voice} is an ElevenLabs voice; local speaks its eSpeak NG voices"
        return None

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset(IMAGE_SIZES)

    async def submit(self, job: Job) -> Finished | Running:
        if job.tool is not None:
            return await self._tool(job)
        references = [await self._reference(i, url) for i, url in enumerate(job.image_urls)]
        if job.kind == "video":
            artifacts = await asyncio.to_thread(_videos, job, references)
        else:
            artifacts = await asyncio.to_thread(_images, job, references)
        return Finished(artifacts, usage={"renderer": "procedural"})

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        return await self.submit(job)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        return None

    async def _tool(self, job: Job) -> Finished:
        """The job's outputs, up to ``parallel`` at a time (text to speech one at a time: its
        engine is serial); a tool that makes the same output each time makes it once. The first
        failure stops the rest."""
        inputs = await self._inputs(job)
        serial = self._speech if job.tool == "text-to-speech" else contextlib.nullcontext()

        async def one(index: int) -> Artifact:
            async with serial, self._slots:
                return await asyncio.to_thread(local_tools.make, job, inputs, index)

        if job.tool in SAME_EACH_TIME:
            return Finished([await one(0)] * job.num_outputs, usage={"renderer": "local-tools"})
        try:
            async with asyncio.TaskGroup() as group:
                made = [group.create_task(one(i)) for i in range(job.num_outputs)]
        except ExceptionGroup as failed:  # the first failure, as the runner knows it
            raise failed.exceptions[0] from None
        return Finished([task.result() for task in made], usage={"renderer": "local-tools"})

    async def _inputs(self, job: Job) -> local_tools.Inputs:
        """The bytes of the job's input files, by role; a file gone from the store (a temporary
        one past its time) fails the job with its id."""
        assert self._files is not None, "the local provider was built without the store"
        files: dict[str, list[bytes]] = {}
        for role, stored in job.inputs:
            files.setdefault(role, []).append(await self._files.read(stored))
        return local_tools.Inputs(files)

    async def _reference(self, index: int, url: str) -> Image.Image:
        data = await fetch_reference(self._fetch, index, url)
        try:
            return await asyncio.to_thread(render.decode_reference, data)
        except render.ReferenceImageError as exc:
            raise ReferenceFailure(f"image_urls[{index}] is not an image ({url}): {exc}") from exc


def _images(job: Job, references: list[Image.Image]) -> list[Artifact]:
    width, height = render.image_size(job.aspect_ratio, job.resolution)
    return [
        Artifact(render.render_png(job.prompt, i, width, height, references), "png", width, height)
        for i in range(job.num_outputs)
    ]


def _videos(job: Job, references: list[Image.Image]) -> list[Artifact]:
    width, height = render.video_size(job.aspect_ratio, job.resolution)
    return [
        Artifact(
            render.render_mp4(_variant(job.prompt, i), job.duration, width, height, references),
            "mp4",
            width,
            height,
            float(job.duration),
        )
        for i in range(job.num_outputs)
    ]


def _variant(prompt: str, index: int) -> str:
    return prompt if index == 0 else f"{prompt} #{index + 1}"
