"""The built-in ``local`` provider: a procedural renderer, not an AI model.

It draws deterministic gradients and shapes with the prompt written on them (PNG) and animates
them into H.264 MP4 files, so the whole product runs offline with no GPU and no vendor account.
Reference images in ``image_urls`` are fetched through the outbound URL guard and drawn in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PIL import Image

from hatchery.providers import render
from hatchery.providers.base import IMAGE_SIZES, Artifact, Finished, Job, Running
from hatchery.providers.media import Fetch, ReferenceFailure, fetch_reference


class LocalProvider:
    name = "local"

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch

    def serves(self, model: str) -> bool:
        return True

    def unsupported(self, job: Job) -> str | None:
        return None

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset(IMAGE_SIZES)

    async def submit(self, job: Job) -> Finished | Running:
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
