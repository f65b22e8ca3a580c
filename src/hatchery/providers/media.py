"""Checking what an upstream sent before it is stored: an image is decoded far enough to know its
format and size; a video must at least be an MP4. Anything else (an HTML error page served with
200, a truncated file) is a retryable failure, never a completed task with a broken file."""

from __future__ import annotations

import asyncio
import base64
import io
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from hatchery.domain.tools import TOOLS
from hatchery.media.probe import SVG, MediaInfo, NotMedia, inspect
from hatchery.providers import render
from hatchery.providers.base import IMAGE_SIZES, Artifact, Job, RetryableError, TerminalError
from hatchery.storage import CONTENT_TYPES

Fetch = Callable[[str], Awaitable[bytes]]

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
VEO_DURATIONS = (4, 6, 8)  # the seconds every Veo 3.1 provider makes


def image_artifact(provider: str, data: bytes) -> Artifact:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RetryableError(f"{provider}: an output is not a readable image ({exc})") from None
    extension = IMAGE_FORMATS.get(kind or "")
    if extension is None:
        raise RetryableError(f"{provider}: an output is a {kind} image, not PNG, JPEG or WebP")
    return Artifact(data, extension, width, height)


def video_artifact(provider: str, job: Job, data: bytes) -> Artifact:
    """A downloaded video of ``job``: an MP4 of the job's nominal frame size."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        raise RetryableError(f"{provider}: an output is not an MP4 file")
    width, height = render.video_size(job.aspect_ratio, job.resolution)
    return Artifact(data, "mp4", width, height, float(job.duration))


async def tool_artifact(provider: str, job: Job, data: bytes, made_by: str) -> Artifact:
    """One downloaded output of a tool execution, read from its bytes: of the tool's kind
    (image, video, audio), in a format we store, SVG for ``vectorize-image`` and only there.
    ``made_by`` is shown on the file (``fal fal-ai/birefnet/v2``)."""
    assert job.tool is not None
    info = await asyncio.to_thread(_inspect, data)
    if info is None:
        raise RetryableError(f"{provider}: an output is not an image, video or audio file")
    wanted = TOOLS[job.tool].output.value.upper()
    vector = job.tool == "vectorize-image"
    problem = None
    if info.kind != wanted:
        problem = f"is {info.kind.lower()}, not {wanted.lower()}"
    elif (info.content_type == SVG) != vector:
        problem = "is not an SVG" if vector else "is an SVG"
    elif info.extension not in CONTENT_TYPES:
        problem = f"is a {info.extension} file, which is not stored"
    if problem:
        raise RetryableError(f"{provider}: an output of {job.tool} {problem}")
    return Artifact(data, info.extension, info.width, info.height, info.duration_seconds, made_by)


def _inspect(data: bytes) -> MediaInfo | None:
    with tempfile.TemporaryDirectory(prefix="hatchery-output-") as folder:
        path = Path(folder) / "output"
        path.write_bytes(data)
        try:
            return inspect(path)
        except NotMedia:
            return None


def video_resolution(resolution: str) -> str:
    """Our ``1k``/``2k``/``4k`` as a video resolution: 720p, 1080p, 4k."""
    return {"1k": "720p", "2k": "1080p", "4k": "4k"}[resolution]


class ReferenceFailure(TerminalError):
    """A reference image that could not be fetched or is not an image."""


async def fetch_reference(fetch: Fetch, index: int, url: str) -> bytes:
    try:
        return await fetch(url)
    except Exception as exc:
        raise ReferenceFailure(f"image_urls[{index}] could not be fetched ({url}): {exc}") from exc


async def inline_reference(fetch: Fetch, index: int, url: str) -> tuple[str, str]:
    """A reference image as (MIME type, base64) for vendors that take images inline."""
    data = await fetch_reference(fetch, index, url)
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ReferenceFailure(f"image_urls[{index}] is not an image ({url}): {exc}") from None
    if kind not in IMAGE_FORMATS:
        raise ReferenceFailure(f"image_urls[{index}] is a {kind} image; send PNG, JPEG or WebP")
    return CONTENT_TYPES[IMAGE_FORMATS[kind]], base64.b64encode(data).decode("ascii")


def image_prompt(job: Job) -> str:
    """Image vendors take no negative prompt: it travels in the prompt."""
    if job.negative_prompt:
        return f"{job.prompt}\n\nAvoid: {job.negative_prompt}"
    return job.prompt


def job_artifact(provider: str, job: Job, data: bytes) -> Artifact:
    """One downloaded output of ``job``, checked: a video or an image."""
    if job.kind == "video":
        return video_artifact(provider, job, data)
    return image_artifact(provider, data)


def veo_duration_problem(job: Job) -> str | None:
    return None if job.duration in VEO_DURATIONS else "duration must be 4, 6 or 8 seconds"


def image_sizes(sized: bool) -> frozenset[str]:
    """The image sizes of a vendor model: all three with a size setting, else 1K only."""
    return frozenset(IMAGE_SIZES) if sized else frozenset({"1k"})


def single_video_problem(job: Job) -> str | None:
    """The resellers' Veo models (fal, Replicate) make one video per request, from one image."""
    if job.num_outputs != 1 or len(job.image_urls) > 1:
        return "it makes one video per request, from at most one image"
    return None


def video_fields(job: Job) -> dict[str, Any]:
    """The fields fal's and Replicate's Veo 3.1 models share (each adds duration and image)."""
    fields: dict[str, Any] = {
        "prompt": job.prompt,
        "aspect_ratio": job.aspect_ratio,
        "resolution": video_resolution(job.resolution),
        "generate_audio": True,
    }
    if job.negative_prompt:
        fields["negative_prompt"] = job.negative_prompt
    return fields
