"""Replicate's models for the VideoGen tools: which model runs a tool, how it is asked, what it is
sent (``tool-upstreams.md`` §3 and §5).

A route is a model. An *official* model is named ``owner/name`` and run with
``POST /models/{owner}/{name}/predictions`` and ``{"input": ...}``; a *community* model is named
``owner/name:<64-hex version>`` and run with ``POST /predictions`` and
``{"version": "<64-hex>", "input": ...}`` (Replicate's HTTP API: ``version`` is the version id;
since 2025-08 it also takes ``owner/name:<version>`` and, for official models, ``owner/name``; the
bare id works before and after that change). Versions change: the catalog may name another
version of a model mapped here (``route_problem`` checks the form and the model).

Replicate has no text-to-speech or sound-effect model mapped here (none of ElevenLabs').
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hatchery.providers.base import Job
from hatchery.providers.media import VEO_DURATIONS
from hatchery.providers.tool_inputs import (
    NANO_RATIOS,
    VEO_RATIOS,
    VEO_REFERENCE_IMAGES,
    Urls,
    nearest_ratio,
    recraft_size_problem,
)

Build = Callable[[Job, Urls], dict[str, Any]]
Check = Callable[[Job], str | None]
COMMUNITY = re.compile(r"(?P<model>[\w.-]+/[\w.-]+):(?P<version>[0-9a-f]{64})")
OFFICIAL = re.compile(r"[\w.-]+/[\w.-]+")
UPSCALED = (("720p", 720), ("1080p", 1080), ("4k", 2160))  # topazlabs/video-upscale's targets


def _ok(job: Job) -> str | None:
    return None


@dataclass(frozen=True)
class Route:
    model: str  # "owner/name"
    label: str  # what runs there, shown on the output file
    build: Build
    version: str | None = None  # community models: the 64-hex version id
    problem: Check = _ok

    @property
    def name(self) -> str:
        return f"{self.model}:{self.version}" if self.version else self.model

    @property
    def made_by(self) -> str:
        return f"replicate {self.model} ({self.label})"

    def request(self, job: Job, urls: Urls) -> tuple[str, dict[str, Any]]:
        """The create call: its path and body."""
        given = self.build(job, urls)
        if self.version:
            return "predictions", {"version": self.version, "input": given}
        return f"models/{self.model}/predictions", {"input": given}


# -- inputs ------------------------------------------------------------------------------------


def _one(role: str, field: str, **fixed: Any) -> Build:
    def build(job: Job, urls: Urls) -> dict[str, Any]:
        return {field: urls[role][0], **fixed}

    return build


def _upscale_video(job: Job, urls: Urls) -> dict[str, Any]:
    return {"video": urls["video"][0], "target_resolution": upscaled_resolution(job)}


def upscaled_resolution(job: Job) -> str:
    """Of 720p, 1080p and 4k, the nearest to twice the input's height (its default: 1080p)."""
    videos = job.input("video")
    height = videos[0].height if videos else None
    if not height:
        return "1080p"
    return min(UPSCALED, key=lambda target: abs(target[1] - 2 * height))[0]


def _nano(job: Job, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": job.prompt,
        "aspect_ratio": nearest_ratio(job, NANO_RATIOS),
        "output_format": "png",
    }
    if urls.get("image"):
        body["image_input"] = list(urls["image"])
    return body


def _veo(job: Job, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": job.prompt,
        "aspect_ratio": nearest_ratio(job, VEO_RATIOS),
        "duration": job.duration,
        "resolution": "720p",
        "generate_audio": bool(job.options.get("generate_audio")),
    }
    images = list(urls.get("image") or ())
    if len(images) == 1:
        body["image"] = images[0]
    elif images:
        body["reference_images"] = images
    return body


def _avatar(job: Job, urls: Urls) -> dict[str, Any]:
    return {"source_image": urls["presenter"][0], "driven_audio": urls["audio"][0]}


def _veo_problem(job: Job) -> str | None:
    images = len(job.input("image"))
    if job.input("video"):
        return "google/veo-3.1 on Replicate does not restyle an input video"
    if job.duration not in VEO_DURATIONS:
        return "duration must be 4, 6 or 8 seconds"
    if images > 1 and (images > VEO_REFERENCE_IMAGES or job.duration != 8):
        return f"a video from 2 to {VEO_REFERENCE_IMAGES} reference images is 8 seconds long"
    if images > 1 and nearest_ratio(job, VEO_RATIOS) != "16:9":
        return "a video from several reference images is 16:9"
    return None if job.prompt.strip() else "it needs a prompt"


# -- the table ---------------------------------------------------------------------------------

ROUTES: dict[str, Route] = {
    "remove-image-background": Route(
        "lucataco/remove-bg",
        "remove-bg",
        _one("image", "image"),
        "95fcc2a26d3899cd6c2691c900465aaeff466285a65c14638cc5f36f34befaf1",
    ),
    "upscale-image": Route(
        "nightmareai/real-esrgan",
        "Real-ESRGAN",
        _one("image", "image", scale=2),
        "42fed1c4974146d4d4414e2be2c5277c7fcf05fde3b22e94cee859b8a4a39d44",
    ),
    "upscale-video": Route("topazlabs/video-upscale", "Topaz", _upscale_video),
    # official per third-party code that runs it without a version (unverified)
    "vectorize-image": Route(
        "recraft-ai/recraft-vectorize",
        "Recraft vectorizer",
        _one("image", "image"),
        problem=recraft_size_problem,
    ),
    # the version a replicate.com prediction page and several third-party callers run (whether it
    # is the latest is unverified); only the two required inputs are sent: the option names
    # differ between versions
    "generate-avatar": Route(
        "cjwbw/sadtalker",
        "SadTalker",
        _avatar,
        "3aa3dac9353cc4d6bd62a8f95957bd844003b401ca4e4a9b33baa574c549d376",
    ),
    "generate-image": Route("google/nano-banana", "Nano Banana", _nano),
    "generate-video-clip": Route("google/veo-3.1", "Veo 3.1", _veo, problem=_veo_problem),
}


def serves(tool: str) -> bool:
    return tool in ROUTES


def route_problem(tool: str, name: str | None) -> str | None:
    """Why Replicate cannot run ``tool`` with the model ``name`` (None: the default)."""
    if name is None:
        return None
    mapped = ROUTES[tool]
    community = COMMUNITY.fullmatch(name)
    model = community.group("model") if community else name
    if model != mapped.model or not (community or OFFICIAL.fullmatch(name)):
        return f"replicate runs {tool} with {mapped.name}, not {name!r}"
    if bool(community) != bool(mapped.version):
        if mapped.version:
            return f"{mapped.model} is a community model: name it owner/name:<64-hex version>"
        return f"{mapped.model} is an official model: name it owner/name, with no version"
    return None


def route(tool: str, name: str | None) -> Route:
    """The route of ``tool``: the mapped one, at the version the catalog names if it does."""
    mapped = ROUTES[tool]
    community = COMMUNITY.fullmatch(name or "")
    return replace(mapped, version=community.group("version")) if community else mapped


def output_urls(output: Any) -> list[str]:
    """A prediction's output files: a URI or a list of URIs."""
    found = output if isinstance(output, list) else [output]
    return [url for url in found if isinstance(url, str)]
