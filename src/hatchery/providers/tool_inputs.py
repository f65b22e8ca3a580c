"""What every vendor adapter of the tools builds its requests from, whoever the vendor: the
URLs of a job's input files (and of the avatar presenter we draw), how many outputs each
upstream request makes, a frame size for a tool's aspect ratio (self-hosted models take any),
and facts of models several vendors resell (the aspect ratios of nano-banana and Veo 3.1,
Recraft's size limits)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence

from hatchery.domain.tools import SAME_EACH_TIME
from hatchery.offline import avatar
from hatchery.providers.base import Job, TerminalError
from hatchery.providers.inputs import InputFiles, data_uri

Urls = Mapping[str, Sequence[str]]  # the job's input URLs by role, and its "presenter"

# the aspect ratios of nano-banana (fal and Replicate) and of Veo 3.1
NANO_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
VEO_RATIOS = ("16:9", "9:16")
VEO_REFERENCE_IMAGES = 3  # Veo 3.1's limit; fal's own limit for image_urls is unverified
RECRAFT_SIDES = (256, 4096)  # every side over the first and under the second
RECRAFT_PIXELS = 16_000_000
MEGAPIXEL = 1024 * 1024


def nearest_ratio(job: Job, choices: Sequence[str]) -> str:
    """Of ``choices`` ("16:9"), the ratio nearest the job's ``aspect`` option (default 16:9)."""
    width, height = job.options.get("aspect") or (16, 9)
    wanted = math.log(int(width) / int(height))

    def distance(choice: str) -> float:
        w, h = choice.split(":")
        return abs(math.log(int(w) / int(h)) - wanted)

    return min(choices, key=distance)


def presenter_png(job: Job) -> bytes:
    """The avatar presenter's 720x720 portrait, a PNG (drawn: CPU work, call it in a thread)."""
    presenter = avatar.presenter(str(job.options.get("presenter_id")))
    if presenter is None:
        raise TerminalError(f"no avatar presenter {job.options.get('presenter_id')}")
    return avatar.image_png(presenter)


def presenter_uri(job: Job) -> str:
    """The avatar presenter's portrait as a PNG data URI."""
    return data_uri(presenter_png(job), "image/png")


async def input_urls(job: Job, inputs: InputFiles) -> dict[str, list[str]]:
    """The URLs a vendor fetches the job's inputs from, by role (plus ``presenter``)."""
    urls: dict[str, list[str]] = {}
    for role, stored in job.inputs:
        urls.setdefault(role, []).append(await inputs.url(stored))
    if job.tool == "generate-avatar":
        urls["presenter"] = [await asyncio.to_thread(presenter_uri, job)]
    return urls


def request_sizes(job: Job, per_request: int) -> list[int]:
    """How many outputs each upstream request makes: one request for a tool that makes the
    same output each time, else ``num_outputs`` split in requests of at most ``per_request``."""
    if job.tool in SAME_EACH_TIME:
        return [1]
    full, rest = divmod(job.num_outputs, per_request)
    return [per_request] * full + ([rest] if rest else [])


def recraft_size_problem(job: Job) -> str | None:
    """Recraft's vectorizer (on fal and on Replicate) takes images with every side over 256 and
    under 4096 pixels, under 16 megapixels (and under 5 MB, which the input file does not
    tell here: fal refuses a larger one itself)."""
    images = job.input("image")
    width, height = (images[0].width, images[0].height) if images else (None, None)
    if width is None or height is None:
        return None
    low, high = RECRAFT_SIDES
    if min(width, height) <= low or max(width, height) >= high or width * height >= RECRAFT_PIXELS:
        return (
            f"Recraft vectorizes images whose sides are over {low} and under {high} pixels and "
            f"under 16 megapixels (this one is {width}x{height})"
        )
    return None


def aspect_size(width: int, height: int, pixels: int = MEGAPIXEL) -> tuple[int, int]:
    """A ``width:height`` frame of about ``pixels`` pixels, each side a multiple of 64."""
    scale = math.sqrt(pixels / (width * height))
    return max(64, round(width * scale / 64) * 64), max(64, round(height * scale / 64) * 64)


def tool_aspect(job: Job) -> tuple[int, int]:
    """A tool's ``aspect`` option (16:9 unless given)."""
    width, height = job.options.get("aspect") or (16, 9)
    return int(width), int(height)
