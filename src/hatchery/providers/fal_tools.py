"""fal's endpoints for the VideoGen tools: which endpoint runs a tool, what it is sent and where
its output file is in the result (``tool-upstreams.md`` §2 and §5).

A *route* is what the catalog names (``upstream = {fal = "fal-ai/esrgan"}``, else the tool's
default in :data:`DEFAULTS`). Most routes are one endpoint; a few are a family whose member is
chosen by the job's inputs: ``fal-ai/veo3.1`` runs text-to-video, ``/image-to-video`` (one image),
``/reference-to-video`` (several) or, for an input video, Kling O1's restyle endpoint;
``fal-ai/nano-banana`` runs its ``/edit`` endpoint when there are reference images.

Each :class:`Endpoint` says how to build its input from the job and its input URLs, how many
outputs one request makes, why it cannot serve a job (``problem``) and under which key of the
result its files are. ``providers.fal`` speaks the queue protocol around them.

Input files reach fal as URLs (``InputFiles.url``: presigned, or a ``data:`` URI); the avatar's
presenter is a picture we draw, sent as a small PNG data URI (``tool_inputs.input_urls``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hatchery.domain.voices import elevenlabs_speed, replace_words
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

Build = Callable[[Job, Urls, int], dict[str, Any]]  # (job, urls, outputs of this request)
Check = Callable[[Job], str | None]

TOPAZ_PIXELS = 16_777_216  # the largest 2x output sent to Topaz (it bills per megapixel)
MAX_SPOKEN = 40_000  # characters: the most any ElevenLabs model takes in one request
FAL_SOUND_SECONDS = (0.5, 22.0)  # duration_seconds on fal (the direct API takes up to 30)
KLING_PROMPT_CHARS = 2500
KLING_IMAGES_WITH_VIDEO = 4


def _ok(job: Job) -> str | None:
    return None


def _always(job: Job) -> bool:
    return True


@dataclass(frozen=True)
class Endpoint:
    """One fal endpoint serving a tool."""

    id: str  # "fal-ai/birefnet/v2"
    label: str  # what runs there, shown on the output file ("BiRefNet")
    build: Build
    output: str  # the result's key holding the file(s): a file object or a list of them
    takes: Callable[[Job], bool] = _always  # whether this member of its route fits the job
    problem: Check = _ok
    per_request: int = 1  # outputs one request can make

    @property
    def made_by(self) -> str:
        return f"fal {self.id} ({self.label})"


@dataclass(frozen=True)
class Route:
    tool: str
    endpoints: tuple[Endpoint, ...]  # the first that takes the job serves it

    def endpoint(self, job: Job) -> Endpoint:
        return next((e for e in self.endpoints if e.takes(job)), self.endpoints[-1])


def _topaz_size_problem(job: Job) -> str | None:
    """Topaz bills by the output's megapixels: an output past 16.7 MP (the size the built-in
    price covers, and local's own cap) is left to another provider."""
    images = job.input("image")
    width, height = (images[0].width, images[0].height) if images else (None, None)
    if width and height and 4 * width * height > TOPAZ_PIXELS:
        return (
            f"Topaz makes 2x outputs up to {TOPAZ_PIXELS / 1e6:.1f} megapixels here; this image "
            f"({width}x{height}) would make {4 * width * height / 1e6:.1f}"
        )
    return None


def spoken_text(job: Job) -> str:
    """The text with the pronunciation replacements applied (ElevenLabs has no field for them),
    as every speaking provider applies them."""
    return replace_words(job.prompt, job.options.get("replacements") or (), MAX_SPOKEN)


def voice_problem(job: Job) -> str | None:
    """fal's ElevenLabs models speak fal's own default voice here: whether their ``voice`` takes
    an ElevenLabs account's voice_id (fal's examples give names) is unverified, so a request
    that names a voice is left to the providers that have it."""
    voice_id = job.options.get("voice_id")
    if voice_id:
        return f"it speaks its default voice only, not {voice_id}"
    return None


# -- inputs ------------------------------------------------------------------------------------


def _one(role: str, field: str, **fixed: Any) -> Build:
    """An input of one file (``image_url`` / ``video_url``) and fixed settings."""

    def build(job: Job, urls: Urls, count: int) -> dict[str, Any]:
        return {field: urls[role][0], **fixed}

    return build


def _nano(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": job.prompt,
        "num_images": count,
        "aspect_ratio": nearest_ratio(job, NANO_RATIOS),
        "output_format": "png",
    }
    if urls.get("image"):
        body["image_urls"] = list(urls["image"])
    return body


def _veo(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    return {
        "prompt": job.prompt,
        "duration": f"{job.duration}s",
        "aspect_ratio": nearest_ratio(job, VEO_RATIOS),
        "resolution": "720p",
        "generate_audio": bool(job.options.get("generate_audio")),
    }


def _veo_image(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    return {**_veo(job, urls, count), "image_url": urls["image"][0]}


def _veo_references(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    return {**_veo(job, urls, count), "image_urls": list(urls["image"])}


def _restyle(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": job.prompt, "video_url": urls["video"][0], "keep_audio": True}
    if urls.get("image"):
        body["image_urls"] = list(urls["image"])
    return body


def _speech(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    body: dict[str, Any] = {"text": spoken_text(job)}  # no voice: fal's default (voice_problem)
    speed = job.options.get("speed")
    if speed is not None:
        body["speed"] = elevenlabs_speed(speed)
    if job.options.get("language"):
        body["language_code"] = job.options["language"]
    if job.options.get("auto_expand"):
        body["apply_text_normalization"] = "on"
    return body


def _sound(job: Job, urls: Urls, count: int) -> dict[str, Any]:
    body: dict[str, Any] = {"text": job.prompt, "duration_seconds": _sound_seconds(job)}
    if job.options.get("influence") is not None:
        body["prompt_influence"] = float(job.options["influence"])
    return body


def _sound_seconds(job: Job) -> float:
    return float(job.options.get("seconds") or job.duration)


def _avatar(**fixed: Any) -> Build:
    def build(job: Job, urls: Urls, count: int) -> dict[str, Any]:
        return {"image_url": urls["presenter"][0], "audio_url": urls["audio"][0], **fixed}

    return build


# -- why an endpoint cannot serve a job --------------------------------------------------------


def _images(job: Job) -> int:
    return len(job.input("image"))


def _needs_prompt(job: Job) -> str | None:
    return None if job.prompt.strip() else "it needs a prompt"


def _veo_problem(job: Job) -> str | None:
    if job.duration not in VEO_DURATIONS:
        return "duration must be 4, 6 or 8 seconds"
    return _needs_prompt(job)


def _references_problem(job: Job) -> str | None:
    if _images(job) > VEO_REFERENCE_IMAGES:
        return f"it takes at most {VEO_REFERENCE_IMAGES} reference images"
    if job.duration != 8:
        return "a video from several reference images must be 8 seconds long"
    return _needs_prompt(job)


def _restyle_problem(job: Job) -> str | None:
    if _images(job) > KLING_IMAGES_WITH_VIDEO:
        return f"it takes at most {KLING_IMAGES_WITH_VIDEO} reference images with a video"
    if len(job.prompt) > KLING_PROMPT_CHARS:
        return f"a prompt to restyle a video is at most {KLING_PROMPT_CHARS} characters"
    return _needs_prompt(job)


def _nano_problem(job: Job) -> str | None:
    return None if len(job.prompt.strip()) >= 3 else "its prompt must be 3 characters or more"


def _sound_problem(job: Job) -> str | None:
    low, high = FAL_SOUND_SECONDS
    if not low <= _sound_seconds(job) <= high:
        return f"its sound effects last {low:g} to {high:g} seconds"
    return None


# -- the table ---------------------------------------------------------------------------------


def _has_video(job: Job) -> bool:
    return bool(job.input("video"))


def _nano_family(app: str, label: str) -> tuple[Endpoint, ...]:
    return (
        Endpoint(f"{app}/edit", label, _nano, "images", lambda j: _images(j) > 0, _nano_problem, 4),
        Endpoint(app, label, _nano, "images", problem=_nano_problem, per_request=4),
    )


RESTYLE = Endpoint(
    "fal-ai/kling-video/o1/video-to-video/reference",
    "Kling O1",
    _restyle,
    "video",
    _has_video,
    _restyle_problem,
)
VEO = (
    RESTYLE,
    Endpoint(
        "fal-ai/veo3.1/reference-to-video",
        "Veo 3.1",
        _veo_references,
        "video",
        lambda j: _images(j) > 1,
        _references_problem,
    ),
    Endpoint(
        "fal-ai/veo3.1/image-to-video",
        "Veo 3.1",
        _veo_image,
        "video",
        lambda j: _images(j) == 1,
        _veo_problem,
    ),
    Endpoint("fal-ai/veo3.1", "Veo 3.1", _veo, "video", problem=_veo_problem),
)


def _restyle_only(job: Job) -> str | None:
    return _restyle_problem(job) if _has_video(job) else "it only restyles an input video"


ROUTES: dict[str, dict[str, Route]] = {
    "remove-image-background": {
        "fal-ai/birefnet/v2": Route(
            "remove-image-background",
            (
                Endpoint(
                    "fal-ai/birefnet/v2",
                    "BiRefNet",
                    _one("image", "image_url", output_format="png"),
                    "image",
                ),
            ),
        ),
        "fal-ai/bria/background/remove": Route(
            "remove-image-background",
            (
                Endpoint(
                    "fal-ai/bria/background/remove",
                    "Bria RMBG",
                    _one("image", "image_url"),
                    "image",
                ),
            ),
        ),
    },
    "remove-video-background": {
        # vp9: one WebM whose alpha channel is the cut-out (h264 would make two files)
        "veed/video-background-removal": Route(
            "remove-video-background",
            (
                Endpoint(
                    "veed/video-background-removal",
                    "VEED background removal",
                    _one("video", "video_url", output_codec="vp9"),
                    "video",  # an array: video[0]
                ),
            ),
        ),
        "fal-ai/birefnet/v2/video": Route(
            "remove-video-background",
            (
                Endpoint(
                    "fal-ai/birefnet/v2/video",
                    "BiRefNet",
                    _one("video", "video_url", video_output_type="VP9 (.webm)"),
                    "video",
                ),
            ),
        ),
    },
    "upscale-image": {
        "fal-ai/topaz/upscale/image": Route(
            "upscale-image",
            (
                Endpoint(
                    "fal-ai/topaz/upscale/image",
                    "Topaz",
                    _one("image", "image_url", upscale_factor=2, output_format="png"),
                    "image",
                    problem=_topaz_size_problem,
                ),
            ),
        ),
        "fal-ai/esrgan": Route(
            "upscale-image",
            (
                Endpoint(
                    "fal-ai/esrgan", "Real-ESRGAN", _one("image", "image_url", scale=2), "image"
                ),
            ),
        ),
    },
    "upscale-video": {
        # H264_output: fal's Topaz writes H.265 by default, which browsers play poorly
        "fal-ai/topaz/upscale/video": Route(
            "upscale-video",
            (
                Endpoint(
                    "fal-ai/topaz/upscale/video",
                    "Topaz",
                    _one("video", "video_url", upscale_factor=2, H264_output=True),
                    "video",
                ),
            ),
        ),
        "fal-ai/video-upscaler": Route(
            "upscale-video",
            (
                Endpoint(
                    "fal-ai/video-upscaler",
                    "video upscaler",
                    _one("video", "video_url", scale=2),
                    "video",
                ),
            ),
        ),
    },
    "vectorize-image": {
        "fal-ai/recraft/vectorize": Route(
            "vectorize-image",
            (
                Endpoint(
                    "fal-ai/recraft/vectorize",
                    "Recraft vectorizer",
                    _one("image", "image_url"),
                    "image",
                    problem=recraft_size_problem,
                ),
            ),
        ),
        "fal-ai/image2svg": Route(
            "vectorize-image",
            (Endpoint("fal-ai/image2svg", "image2svg", _one("image", "image_url"), "images"),),
        ),
    },
    "generate-avatar": {
        # fal's audio limit for Fabric (30 s in third-party notes) is unverified: not checked
        "veed/fabric-1.0": Route(
            "generate-avatar",
            (Endpoint("veed/fabric-1.0", "VEED Fabric 1.0", _avatar(resolution="720p"), "video"),),
        ),
        "fal-ai/kling-video/ai-avatar/v2/standard": Route(
            "generate-avatar",
            (
                Endpoint(
                    "fal-ai/kling-video/ai-avatar/v2/standard",
                    "Kling AI Avatar",
                    _avatar(),
                    "video",
                ),
            ),
        ),
    },
    "generate-image": {
        "fal-ai/nano-banana": Route(
            "generate-image", _nano_family("fal-ai/nano-banana", "Nano Banana")
        ),
        "fal-ai/nano-banana-pro": Route(
            "generate-image", _nano_family("fal-ai/nano-banana-pro", "Nano Banana Pro")
        ),
    },
    "generate-video-clip": {
        "fal-ai/veo3.1": Route("generate-video-clip", VEO),
        RESTYLE.id: Route(
            "generate-video-clip",
            (Endpoint(RESTYLE.id, RESTYLE.label, _restyle, "video", problem=_restyle_only),),
        ),
    },
    "text-to-speech": {
        app: Route(
            "text-to-speech",
            (Endpoint(app, "ElevenLabs " + model, _speech, "audio", problem=voice_problem),),
        )
        for app, model in (
            ("fal-ai/elevenlabs/tts/multilingual-v2", "Multilingual v2"),
            ("fal-ai/elevenlabs/tts/turbo-v2.5", "Turbo v2.5"),
        )
    },
    "generate-sound-effect": {
        "fal-ai/elevenlabs/sound-effects/v2": Route(
            "generate-sound-effect",
            (
                Endpoint(
                    "fal-ai/elevenlabs/sound-effects/v2",
                    "ElevenLabs sound effects v2",
                    _sound,
                    "audio",
                    problem=_sound_problem,
                ),
            ),
        ),
    },
}

DEFAULTS = {
    "remove-image-background": "fal-ai/birefnet/v2",
    "remove-video-background": "veed/video-background-removal",
    "upscale-image": "fal-ai/topaz/upscale/image",
    "upscale-video": "fal-ai/topaz/upscale/video",
    "vectorize-image": "fal-ai/recraft/vectorize",
    "generate-avatar": "veed/fabric-1.0",
    "generate-image": "fal-ai/nano-banana",
    "generate-video-clip": "fal-ai/veo3.1",
    "text-to-speech": "fal-ai/elevenlabs/tts/multilingual-v2",
    "generate-sound-effect": "fal-ai/elevenlabs/sound-effects/v2",
}

# every endpoint by id (a stored handle names the endpoint its request went to); an endpoint
# in two routes (Kling's restyle) differs there only in its problem, not in its output
ENDPOINTS: dict[str, Endpoint] = {
    endpoint.id: endpoint
    for routes in ROUTES.values()
    for member in routes.values()
    for endpoint in member.endpoints
}


def route_problem(tool: str, route: str | None) -> str | None:
    """Why fal cannot run ``tool`` through ``route`` (an endpoint it has no mapping for)."""
    known = ROUTES.get(tool, {})
    if route is None or route in known:
        return None
    return f"fal runs {tool} with {', '.join(sorted(known))}, not {route!r}"


def route(tool: str, name: str | None) -> Route:
    return ROUTES[tool][name or DEFAULTS[tool]]


def unsupported(job: Job, name: str | None) -> str | None:
    assert job.tool is not None
    if route_problem(job.tool, name):
        return route_problem(job.tool, name)
    return route(job.tool, name).endpoint(job).problem(job)


def output_urls(endpoint: str, result: Any) -> list[str]:
    """The URLs of the files in an endpoint's result (a file object, or a list of them)."""
    if not isinstance(result, dict):
        return []
    found = result.get(ENDPOINTS[endpoint].output)
    files = found if isinstance(found, list) else [found]
    return [f["url"] for f in files if isinstance(f, dict) and isinstance(f.get("url"), str)]
