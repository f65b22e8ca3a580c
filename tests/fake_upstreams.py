"""Fake upstream vendors on 127.0.0.1, speaking the protocols of ``../shared/docs/upstreams.md``
strictly: each checks the credentials, the paths and the body fields it receives, and records
anything wrong in ``violations`` (a test asserts there are none) besides answering 400.

    FakeFiles       the vendors' file store / CDN: serves outputs, refuses credentials
    FakeGoogle      Gemini ``generateContent`` and Veo ``predictLongRunning`` + operations
    FakeFal         the fal queue API (submit, status, result, cancel)
    FakeReplicate   the Replicate predictions API (create, get, cancel)

What the next requests of a kind get is scripted with ``plan(kind, *modes)``; once the plan is
used up every request gets ``"ok"``. Modes every kind understands: ``"429"`` (with Retry-After
and the vendor's error body), ``"500"``, ``"503"``, ``"hang"`` (answer nothing for
``hang_seconds``), ``"drop"`` (close the connection without answering). Vendor modes are listed
on each class.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.helpers import ThreadingServer, reply

GOOGLE_KEY = "test-google-key"
FAL_KEY = "fal-key-123:secret"
REPLICATE_TOKEN = "r8_test_token"
UPSTREAM_TIMEOUT = 1.5  # what the tests set HATCHERY_UPSTREAM_TIMEOUT to; hangs outlast it

Answer = tuple[int, dict[str, str], bytes]
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
DROP = (-1, {}, b"")


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def json_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


@cache
def png_bytes(
    color: tuple[int, int, int] = (200, 40, 90), size: tuple[int, int] = (64, 36)
) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@cache
def mp4_bytes() -> bytes:
    from hatchery.providers import render

    return render.render_mp4("fake upstream video", 1, 64, 36, [])


def first_problem(*rules: tuple[bool, str]) -> str | None:
    return next((message for broken, message in rules if broken), None)


def _inline_image(part: Any) -> bool:
    data = part.get("inlineData") or {}
    return data.get("mimeType") in ("image/png", "image/jpeg", "image/webp") and bool(
        data.get("data")
    )


# -- the tool endpoints' files and input schemas ---------------------------------------------


@cache
def rgba_png_bytes() -> bytes:
    """A cut-out: 64x36, its left half transparent."""
    from PIL import Image

    image = Image.new("RGBA", (64, 36), (200, 40, 90, 255))
    image.paste((0, 0, 0, 0), (0, 0, 32, 36))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@cache
def upscaled_mp4_bytes() -> bytes:
    from hatchery.providers import render

    return render.render_mp4("fake upscaled video", 1, 128, 72, [])


@cache
def webm_alpha_bytes() -> bytes:
    """One second of 64x36 VP9 WebM with an alpha channel."""
    import numpy as np

    from hatchery.offline import frames

    pixels = np.zeros((36, 64, 4), dtype=np.uint8)
    pixels[:, 32:] = (200, 40, 90, 255)
    return frames.write_webm_alpha([pixels] * 10, 10, (64, 36))


@cache
def svg_bytes() -> bytes:
    from hatchery.offline import vector

    return vector.vectorize(png_bytes()).data


@cache
def mp3_bytes() -> bytes:
    from hatchery.offline import sound

    return sound.sound_effect("beep", seconds=1.0).data


# what FakeFiles serves, by the end of the file's name (the first that matches)
FILES = (
    (".cutout.png", rgba_png_bytes, "image/png"),
    (".2x.png", lambda: png_bytes(size=(128, 72)), "image/png"),
    (".png", png_bytes, "image/png"),
    (".2x.mp4", upscaled_mp4_bytes, "video/mp4"),
    (".mp4", mp4_bytes, "video/mp4"),
    (".alpha.webm", webm_alpha_bytes, "video/webm"),
    (".svg", svg_bytes, "image/svg+xml"),
    (".mp3", mp3_bytes, "audio/mpeg"),
)


@dataclass(frozen=True)
class Spec:
    """One input field: its JSON type (``str``, ``int``, ``num``, ``bool``, ``list``, or the
    media a URL field points at: ``image``, ``video``, ``audio``; ``images`` for a list of image
    URLs), whether it is required, its enum or its range."""

    kind: str
    required: bool = False
    allowed: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None


def req(kind: str, *allowed: Any, low: float | None = None, high: float | None = None) -> Spec:
    return Spec(kind, True, allowed, low, high)


def opt(kind: str, *allowed: Any, low: float | None = None, high: float | None = None) -> Spec:
    return Spec(kind, False, allowed, low, high)


MEDIA = frozenset({"image", "video", "audio"})
TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "num": (int, float),
    "bool": bool,
    "list": list,
    "images": list,
}


def schema_problem(schema: dict[str, Spec], body: Any) -> str | None:
    """What is wrong with ``body`` under ``schema``: unknown or missing fields, types, enums,
    ranges and URLs (https, or a data: URI of the right kind of media)."""
    if not isinstance(body, dict):
        return "the input must be a JSON object"
    unknown = sorted(set(body) - set(schema))
    missing = sorted(name for name, spec in schema.items() if spec.required and name not in body)
    if unknown or missing:
        return f"unknown fields {unknown}, missing fields {missing}"
    for name, value in body.items():
        problem = _field_problem(schema[name], value)
        if problem:
            return f"{name}: {problem}"
    return None


def _field_problem(spec: Spec, value: Any) -> str | None:
    if spec.kind in MEDIA:
        return url_problem(value, spec.kind)
    wanted = TYPES[spec.kind]
    if not isinstance(value, wanted) or (isinstance(value, bool) and spec.kind != "bool"):
        return f"{value!r} is not of type {spec.kind}"
    if spec.allowed and value not in spec.allowed:
        return f"{value!r} is not one of {list(spec.allowed)}"
    if spec.low is not None and spec.high is not None:
        size = len(value) if isinstance(value, str | list) else value
        if not spec.low <= size <= spec.high:
            return f"{value!r} is out of range {spec.low:g} to {spec.high:g}"
    if spec.kind == "images":
        return next(filter(None, (url_problem(v, "image") for v in value)), None)
    return None


# URL prefixes of object stores on 127.0.0.1 that a test started (a presigned URL's host): the
# fakes fetch such a URL as the vendor would, and record what it gave in ``FETCHED``.
OBJECT_STORES: set[str] = set()
FETCHED: list[tuple[str, bytes]] = []


def url_problem(value: Any, media: str) -> str | None:
    """A URL a vendor can fetch (https, or one of ``OBJECT_STORES``, fetched here), or a data:
    URI of ``media`` whose bytes decode."""
    if not isinstance(value, str):
        return f"{value!r} is not a URL"
    if value.startswith("https://"):
        return None
    if any(value.startswith(store) for store in OBJECT_STORES):
        return _fetched_problem(value, media)
    if not value.startswith(f"data:{media}/") or ";base64," not in value:
        return f"{value[:40]!r} is neither an https URL nor a base64 data: URI of {media}"
    try:
        data = base64.b64decode(value.split(";base64,", 1)[1], validate=True)
    except ValueError:
        return "the data: URI is not base64"
    return _media_problem(data, media)


def _fetched_problem(url: str, media: str) -> str | None:
    """The vendor fetching a presigned URL, with no credentials of ours."""
    import httpx

    response = httpx.get(url, timeout=10)
    if response.status_code != 200:
        return f"fetching {url[:60]} answered HTTP {response.status_code}"
    FETCHED.append((url, response.content))
    return _media_problem(response.content, media)


def _media_problem(data: bytes, media: str) -> str | None:
    if media == "image":
        from PIL import Image

        try:
            Image.open(io.BytesIO(data)).verify()
        except Exception:
            return "the bytes are not an image"
    return None if data else "the bytes are empty"


NANO_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
_NANO = {
    "prompt": req("str", low=3, high=50_000),
    "num_images": opt("int", low=1, high=4),
    "aspect_ratio": opt("str", *NANO_RATIOS),
    "output_format": opt("str", "jpeg", "png", "webp"),
    "sync_mode": opt("bool"),
    "limit_generations": opt("bool"),
    "seed": opt("int"),
    "safety_tolerance": opt("str", "1", "2", "3", "4", "5", "6"),
}
_NANO_EDIT = {
    **_NANO,
    "image_urls": req("images"),
    "aspect_ratio": opt("str", "auto", *NANO_RATIOS),
}
_PRO = {"resolution": opt("str", "1K", "2K", "4K"), "enable_web_search": opt("bool")}
_VEO = {
    "prompt": req("str", low=1, high=20_000),
    "duration": opt("str", "4s", "6s", "8s"),
    "aspect_ratio": opt("str", "16:9", "9:16"),
    "resolution": opt("str", "720p", "1080p", "4k"),
    "generate_audio": opt("bool"),
    "auto_fix": opt("bool"),
    "seed": opt("int"),
    "negative_prompt": opt("str"),
    "safety_tolerance": opt("str", "1", "2", "3", "4", "5", "6"),
}
_BIREFNET = {
    "model": opt(
        "str",
        "General Use (Light)",
        "General Use (Light 2K)",
        "General Use (Heavy)",
        "Matting",
        "Portrait",
        "General Use (Dynamic)",
    ),
    "operating_resolution": opt("str", "1024x1024", "2048x2048", "2304x2304"),
    "output_mask": opt("bool"),
    "refine_foreground": opt("bool"),
    "sync_mode": opt("bool"),
}
_TTS = {
    "text": req("str", low=1, high=10_000),
    "voice": opt("str"),
    "stability": opt("num", low=0, high=1),
    "similarity_boost": opt("num", low=0, high=1),
    "style": opt("num", low=0, high=1),
    "speed": opt("num", low=0.7, high=1.2),
    "timestamps": opt("bool"),
    "language_code": opt("str"),
    "apply_text_normalization": opt("str", "auto", "on", "off"),
    "previous_text": opt("str"),
    "next_text": opt("str"),
}
FAL_SCHEMAS: dict[str, dict[str, Spec]] = {
    "fal-ai/nano-banana": _NANO,
    "fal-ai/nano-banana/edit": _NANO_EDIT,
    "fal-ai/nano-banana-pro": {**_NANO, **_PRO},
    "fal-ai/nano-banana-pro/edit": {**_NANO_EDIT, **_PRO},
    "fal-ai/veo3.1": _VEO,
    "fal-ai/veo3.1/image-to-video": {
        **_VEO,
        "image_url": req("image"),
        "aspect_ratio": opt("str", "auto", "16:9", "9:16"),
    },
    "fal-ai/veo3.1/reference-to-video": {
        **{k: v for k, v in _VEO.items() if k not in ("seed", "negative_prompt")},
        "image_urls": req("images", low=1, high=3),
        "duration": opt("str", "8s"),
    },
    "fal-ai/kling-video/o1/video-to-video/reference": {
        "prompt": req("str", low=1, high=2500),
        "video_url": req("video"),
        "image_urls": opt("images", low=0, high=4),
        "elements": opt("list"),
        "keep_audio": opt("bool"),
        "duration": opt("str", *(str(s) for s in range(3, 11))),
        "aspect_ratio": opt("str", "auto", "16:9", "9:16", "1:1"),
    },
    "fal-ai/birefnet/v2": {
        "image_url": req("image"),
        "output_format": opt("str", "webp", "png", "gif"),
        "mask_only": opt("bool"),
        **_BIREFNET,
    },
    "fal-ai/bria/background/remove": {"image_url": req("image"), "sync_mode": opt("bool")},
    "veed/video-background-removal": {
        "video_url": req("video"),
        "subject_is_person": opt("bool"),
        "output_codec": opt("str", "vp9", "h264"),
        "refine_foreground_edges": opt("bool"),
    },
    "fal-ai/birefnet/v2/video": {
        "video_url": req("video"),
        "video_output_type": opt(
            "str", "X264 (.mp4)", "VP9 (.webm)", "PRORES4444 (.mov)", "GIF (.gif)"
        ),
        "video_quality": opt("str", "low", "medium", "high", "maximum"),
        "video_write_mode": opt("str", "fast", "balanced", "small"),
        **_BIREFNET,
    },
    "fal-ai/topaz/upscale/image": {
        "image_url": req("image"),
        "upscale_factor": opt("num", low=1, high=4),
        "model": opt("str"),
        "output_format": opt("str", "jpeg", "png"),
        "face_enhancement": opt("bool"),
        "face_enhancement_strength": opt("num", low=0, high=1),
        "face_enhancement_creativity": opt("num", low=0, high=1),
        "subject_detection": opt("str", "All", "Foreground", "Background"),
        "crop_to_fill": opt("bool"),
    },
    "fal-ai/esrgan": {
        "image_url": req("image"),
        "scale": opt("num", low=1, high=8),
        "model": opt("str", "RealESRGAN_x4plus", "RealESRGAN_x2plus", "RealESRGAN_x4_v3"),
        "face": opt("bool"),
        "tile": opt("int"),
        "output_format": opt("str", "png", "jpeg"),
    },
    "fal-ai/topaz/upscale/video": {
        "video_url": req("video"),
        "upscale_factor": opt("num", low=1, high=4),
        "target_fps": opt("int", low=16, high=60),
        "H264_output": opt("bool"),
        "model": opt("str"),
    },
    "fal-ai/video-upscaler": {"video_url": req("video"), "scale": opt("num", low=1, high=8)},
    "fal-ai/recraft/vectorize": {"image_url": req("image")},
    "fal-ai/image2svg": {
        "image_url": req("image"),
        "colormode": opt("str", "color", "binary"),
        "hierarchical": opt("str", "stacked", "cutout"),
        "mode": opt("str", "spline", "polygon"),
        "filter_speckle": opt("int", low=0, high=20),
    },
    "fal-ai/elevenlabs/tts/multilingual-v2": _TTS,
    "fal-ai/elevenlabs/tts/turbo-v2.5": _TTS,
    "fal-ai/elevenlabs/sound-effects/v2": {
        "text": req("str", low=1, high=10_000),
        "duration_seconds": opt("num", low=0.5, high=22),
        "prompt_influence": opt("num", low=0, high=1),
        "loop": opt("bool"),
        "output_format": opt("str"),
    },
    "veed/fabric-1.0": {
        "image_url": req("image"),
        "audio_url": req("audio"),
        "resolution": req("str", "720p", "480p"),
    },
    "fal-ai/kling-video/ai-avatar/v2/standard": {
        "image_url": req("image"),
        "audio_url": req("audio"),
        "prompt": opt("str"),
    },
}
# where a tool endpoint's result puts its file: (key, in a list?, the file's name ending)
FAL_OUTPUTS = {
    "fal-ai/birefnet/v2": ("image", False, "cutout.png"),
    "fal-ai/bria/background/remove": ("image", False, "cutout.png"),
    "veed/video-background-removal": ("video", True, "alpha.webm"),
    "fal-ai/birefnet/v2/video": ("video", False, "alpha.webm"),
    "fal-ai/topaz/upscale/image": ("image", False, "2x.png"),
    "fal-ai/esrgan": ("image", False, "2x.png"),
    "fal-ai/topaz/upscale/video": ("video", False, "2x.mp4"),
    "fal-ai/video-upscaler": ("video", False, "2x.mp4"),
    "fal-ai/recraft/vectorize": ("image", False, "svg"),
    "fal-ai/image2svg": ("images", True, "svg"),
    "fal-ai/elevenlabs/tts/multilingual-v2": ("audio", False, "mp3"),
    "fal-ai/elevenlabs/tts/turbo-v2.5": ("audio", False, "mp3"),
    "fal-ai/elevenlabs/sound-effects/v2": ("audio", False, "mp3"),
    "veed/fabric-1.0": ("video", False, "mp4"),
    "fal-ai/kling-video/ai-avatar/v2/standard": ("video", False, "mp4"),
    "fal-ai/veo3.1/reference-to-video": ("video", False, "mp4"),
    "fal-ai/kling-video/o1/video-to-video/reference": ("video", False, "mp4"),
}

REPLICATE_SCHEMAS: dict[str, dict[str, Spec]] = {
    "google/nano-banana": {
        "prompt": req("str"),
        "image_input": opt("images"),
        "aspect_ratio": opt("str", "match_input_image", *NANO_RATIOS),
        "output_format": opt("str", "jpg", "png"),
    },
    "google/veo-3.1": {
        "prompt": req("str"),
        "image": opt("image"),
        "last_frame": opt("image"),
        "reference_images": opt("images", low=1, high=3),
        "aspect_ratio": opt("str", "16:9", "9:16"),
        "duration": opt("int", 4, 6, 8),
        "resolution": opt("str", "720p", "1080p"),
        "generate_audio": opt("bool"),
        "negative_prompt": opt("str"),
        "seed": opt("int"),
    },
    "topazlabs/video-upscale": {
        "video": req("video"),
        "target_resolution": opt("str", "720p", "1080p", "4k"),
        "target_fps": opt("int", low=15, high=120),
    },
    "recraft-ai/recraft-vectorize": {"image": req("image")},
    "lucataco/remove-bg": {"image": req("image")},
    "nightmareai/real-esrgan": {
        "image": req("image"),
        "scale": opt("num", low=0, high=10),
        "face_enhance": opt("bool"),
    },
    "cjwbw/sadtalker": {
        "source_image": req("image"),
        "driven_audio": req("audio"),
        "still_mode": opt("bool"),
        "use_enhancer": opt("bool"),
        "preprocess": opt("str", "crop", "resize", "full"),
    },
}
REPLICATE_SCHEMAS["google/nano-banana-pro"] = {
    **REPLICATE_SCHEMAS["google/nano-banana"],
    "resolution": opt("str", "1K", "2K", "4K"),
    "safety_filter_level": opt("str"),
}
# community models by version id (Replicate answers 422 for any other version)
REPLICATE_VERSIONS = {
    "95fcc2a26d3899cd6c2691c900465aaeff466285a65c14638cc5f36f34befaf1": "lucataco/remove-bg",
    "42fed1c4974146d4d4414e2be2c5277c7fcf05fde3b22e94cee859b8a4a39d44": "nightmareai/real-esrgan",
    "3aa3dac9353cc4d6bd62a8f95957bd844003b401ca4e4a9b33baa574c549d376": "cjwbw/sadtalker",
}
# the file a model's prediction outputs, by its name's ending
REPLICATE_OUTPUTS = {
    "google/nano-banana": "png",
    "google/nano-banana-pro": "png",
    "google/veo-3.1": "mp4",
    "topazlabs/video-upscale": "2x.mp4",
    "recraft-ai/recraft-vectorize": "svg",
    "lucataco/remove-bg": "cutout.png",
    "nightmareai/real-esrgan": "2x.png",
    "cjwbw/sadtalker": "mp4",
}


def _veo_references_problem(given: dict[str, Any]) -> str | None:
    if not given.get("reference_images"):
        return None
    return first_problem(
        (given.get("aspect_ratio", "16:9") != "16:9", "reference_images need aspect_ratio 16:9"),
        (given.get("duration", 8) != 8, "reference_images need duration 8"),
        ("image" in given, "reference_images and image do not go together"),
    )


class FakeServer:
    """A threaded HTTP server whose subclass answers ``answer(request)``."""

    hang_seconds = UPSTREAM_TIMEOUT + 1.5  # a "hang" outlasts the client's timeout

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._plans: dict[str, list[str]] = defaultdict(list)
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._jobs: dict[str, Job] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    parts.path,
                    parts.query,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with outer._cond:
                    outer.requests.append(request)
                    outer._cond.notify_all()
                status, headers, payload = outer.answer(request)
                if status == -1:
                    self.close_connection = True
                    return
                try:
                    reply(self, status, headers, payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a hang)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = _handle

        self.httpd = ThreadingServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self._cond:
            self.requests.clear()
            self.violations.clear()
            self._plans.clear()
            self.jobs.clear()

    @property
    def jobs(self) -> dict[str, Job]:
        """The upstream jobs this fake has accepted, by id."""
        return self._jobs

    def plan(self, kind: str, *modes: str) -> None:
        with self._cond:
            self._plans[kind].extend(modes)

    def mode(self, kind: str) -> str:
        with self._cond:
            plan = self._plans[kind]
            return plan.pop(0) if plan else "ok"

    def new_id(self) -> str:
        return f"{next(self._ids)}-{uuid.uuid4().hex[:8]}"

    def seen(self, method: str, contains: str) -> list[Request]:
        with self._cond:
            return [r for r in self.requests if r.method == method and contains in r.path]

    def wait_for(
        self, method: str, contains: str, count: int = 1, timeout: float = 30.0
    ) -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if r.method == method and contains in r.path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} {method} *{contains}*, got {len(got)}")
                self._cond.wait(left)

    def refuse(self, problem: str) -> Answer:
        self.violations.append(problem)
        return self.error(400, "INVALID_ARGUMENT", problem)

    def error(self, status: int, code: str, message: str) -> Answer:
        return json_answer(status, {"detail": message})

    def common(self, mode: str) -> Answer | None:
        """The answers every kind of request can be scripted to give."""
        if mode == "429":
            status, headers, body = self.error(
                429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
            )
            return status, {**headers, "Retry-After": "1"}, body
        if mode in ("500", "503"):
            status = int(mode)
            return self.error(
                status, "INTERNAL" if status == 500 else "UNAVAILABLE", "upstream trouble"
            )
        if mode == "hang":
            time.sleep(self.hang_seconds)
            return self.error(503, "UNAVAILABLE", "answered too late")
        if mode == "drop":
            return DROP
        return None

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError


class FakeFiles(FakeServer):
    """Serves ``/files/<name>`` by the end of its name (``FILES``: ``.png``, ``.mp4``, a cut-out
    ``.cutout.png`` with alpha, ``.2x.png`` / ``.2x.mp4`` at twice the size, ``.alpha.webm``,
    ``.svg``, ``.mp3``); a request carrying credentials is a violation."""

    def answer(self, request: Request) -> Answer:
        if "authorization" in request.headers or "x-goog-api-key" in request.headers:
            self.violations.append(f"credentials sent to the file store: {request.path}")
        for ending, make, content_type in FILES:
            if request.path.endswith(ending):
                return 200, {"Content-Type": content_type}, make()
        return json_answer(404, {"detail": "no such file"})

    def url(self, name: str) -> str:
        return f"{self.base}/files/{name}"


@dataclass
class Job:
    kind: str  # "image" / "video"
    polls_left: int
    outcome: str = "ok"
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class FakeGoogle(FakeServer):
    """``/v1beta`` of the Gemini API. Kinds and their vendor modes:

    ``generate``  generateContent: "blocked" (promptFeedback.blockReason), "safety" (finishReason
                  IMAGE_SAFETY, no image), "text" (STOP with text only), "badkey" (400
                  API_KEY_INVALID)
    ``veo``       predictLongRunning: the created operation's outcome, "ok", "error" (done with
                  an INTERNAL error), "invalid" (done with INVALID_ARGUMENT), "filtered"
                  (raiMediaFilteredCount 1, no samples)
    ``operation`` a poll of an operation (common modes only)
    ``download``  the video download (common modes only); it redirects to the file store
    """

    ASPECTS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"})
    IMAGE_MODELS = frozenset({"gemini-2.5-flash-image", "gemini-3-pro-image-preview"})

    def __init__(self, key: str, files: FakeFiles, pending_polls: int = 0) -> None:
        self.key = key
        self.files = files
        self.pending_polls = pending_polls
        self.release = threading.Event()  # with hold_operations, nothing finishes until set
        self.hold_operations = False
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.base}/v1beta"

    def error(self, status: int, code: str, message: str) -> Answer:
        return json_answer(status, {"error": {"code": status, "message": message, "status": code}})

    def answer(self, request: Request) -> Answer:
        if request.headers.get("x-goog-api-key") != self.key:
            return self.error(401, "UNAUTHENTICATED", "missing or wrong x-goog-api-key")
        path = request.path.removeprefix("/v1beta/")
        if request.method == "POST" and path.endswith(":generateContent"):
            return self._generate(path.split("/")[1].removesuffix(":generateContent"), request)
        if (
            request.method == "POST"
            and path == "models/veo-3.1-generate-preview:predictLongRunning"
        ):
            return self._predict(request)
        if request.method == "GET" and "/operations/" in path:
            return self._operation(path)
        if request.method == "GET" and path.startswith("files/") and path.endswith(":download"):
            return self._download(path)
        return self.refuse(f"unexpected {request.method} {request.path}")

    def _generate(self, model: str, request: Request) -> Answer:
        mode = self.mode("generate")
        common = self.common(mode)
        if common:
            return common
        if mode == "badkey":
            body = {
                "error": {
                    "code": 400,
                    "message": "API key not valid.",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"reason": "API_KEY_INVALID"}],
                }
            }
            return json_answer(400, body)
        problem = self._check_generate(model, request.json())
        if problem:
            return self.refuse(problem)
        if mode == "blocked":
            return json_answer(
                200, {"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r-blocked"}
            )
        text = {"text": "Here is your image."}
        if mode in ("safety", "text"):
            reason = "IMAGE_SAFETY" if mode == "safety" else "STOP"
            return json_answer(
                200, {"candidates": [{"content": {"parts": [text]}, "finishReason": reason}]}
            )
        image = {
            "inlineData": {"mimeType": "image/png", "data": base64.b64encode(png_bytes()).decode()}
        }
        thought = {
            "thought": True,
            "inlineData": {
                "mimeType": "image/png",
                "data": base64.b64encode(png_bytes((1, 2, 3))).decode(),
            },
        }
        return json_answer(
            200,
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [thought, text, image]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 12,
                    "candidatesTokenCount": 1290,
                    "totalTokenCount": 1302,
                },
                "modelVersion": model,
                "responseId": f"resp-{self.new_id()}",
            },
        )

    def _check_generate(self, model: str, body: Any) -> str | None:
        if model not in self.IMAGE_MODELS:
            return f"unknown image model {model}"
        try:
            parts = body["contents"][0]["parts"]
            config = body["generationConfig"]
            image_config = config["imageConfig"]
        except (KeyError, IndexError, TypeError):
            return "contents[0].parts and generationConfig.imageConfig are required"
        size = image_config.get("imageSize")
        return first_problem(
            (
                not (isinstance(parts[0].get("text"), str) and parts[0]["text"]),
                "the first part must be the prompt text",
            ),
            (
                not all(_inline_image(p) for p in parts[1:]),
                "reference parts must be inlineData with an image mimeType and base64 data",
            ),
            (
                "IMAGE" not in config.get("responseModalities", []),
                "responseModalities must include IMAGE",
            ),
            (
                image_config.get("aspectRatio") not in self.ASPECTS,
                f"bad aspectRatio {image_config.get('aspectRatio')}",
            ),
            (
                size is not None
                and (model == "gemini-2.5-flash-image" or size not in ("1K", "2K", "4K")),
                f"imageSize {size} is not supported by {model}",
            ),
        )

    def _predict(self, request: Request) -> Answer:
        mode = self.mode("veo")
        common = self.common(mode)
        if common:
            return common
        body = request.json()
        problem = self._check_predict(body)
        if problem:
            return self.refuse(problem)
        op = f"models/veo-3.1-generate-preview/operations/{self.new_id()}"
        self.jobs[op] = Job("video", self.pending_polls, mode, extra=body["parameters"])
        return json_answer(200, {"name": op})

    def _check_predict(self, body: Any) -> str | None:
        try:
            instance = body["instances"][0]
            parameters = body["parameters"]
        except (KeyError, IndexError, TypeError):
            return "instances[0] and parameters are required"
        image = instance.get("image")
        duration, resolution = parameters.get("durationSeconds"), parameters.get("resolution")
        return first_problem(
            (not instance.get("prompt"), "instances[0].prompt is required"),
            (
                image is not None
                and not (image.get("bytesBase64Encoded") and image.get("mimeType")),
                "instances[0].image needs bytesBase64Encoded and mimeType",
            ),
            (duration not in (4, 6, 8), f"durationSeconds {duration} is not 4, 6 or 8"),
            (
                parameters.get("aspectRatio") not in ("16:9", "9:16"),
                "aspectRatio must be 16:9 or 9:16",
            ),
            (resolution not in ("720p", "1080p", "4k"), "resolution must be 720p, 1080p or 4k"),
            (resolution != "720p" and duration != 8, "1080p and 4k need durationSeconds 8"),
            (not 1 <= parameters.get("sampleCount", 1) <= 4, "sampleCount must be 1 to 4"),
        )

    def _operation(self, name: str) -> Answer:
        common = self.common(self.mode("operation"))
        if common:
            return common
        job = self.jobs.get(name)
        if job is None:
            return self.error(404, "NOT_FOUND", f"operation {name} not found")
        if self.hold_operations and not self.release.is_set():
            return json_answer(200, {"name": name, "done": False})
        if job.polls_left > 0:
            job.polls_left -= 1
            return json_answer(200, {"name": name, "done": False, "metadata": {}})
        if job.outcome == "error":
            return json_answer(
                200,
                {
                    "name": name,
                    "done": True,
                    "error": {"code": 13, "message": "Internal error while generating the video."},
                },
            )
        if job.outcome == "invalid":
            return json_answer(
                200,
                {
                    "name": name,
                    "done": True,
                    "error": {"code": 3, "message": "The prompt could not be submitted."},
                },
            )
        if job.outcome == "filtered":
            result = {
                "generatedSamples": [],
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [
                    "The video could not be generated: it may violate our policies."
                ],
            }
        else:
            count = job.extra.get("sampleCount", 1)
            file_id = name.rsplit("/", 1)[1]
            uris = [f"{self.base_url}/files/{file_id}-{i}:download?alt=media" for i in range(count)]
            samples = [{"video": {"uri": uri}} for uri in uris]
            result = {"generatedSamples": samples, "raiMediaFilteredCount": 0}
        return json_answer(
            200,
            {
                "name": name,
                "done": True,
                "response": {
                    "@type": RESPONSE_TYPE,
                    "generateVideoResponse": result,
                },
            },
        )

    def _download(self, path: str) -> Answer:
        common = self.common(self.mode("download"))
        if common:
            return common
        file_id = path.removeprefix("files/").removesuffix(":download")
        return 302, {"Location": self.files.url(f"{file_id}.mp4")}, b""


class FakeFal(FakeServer):
    """The fal queue API. Kinds: ``submit`` (vendor modes "invalid": 422 with detail, "policy":
    422 ``content_policy_violation``, "retryable": 422 with ``X-Fal-Retryable: true``),
    ``status``, ``result`` (vendor modes "filtered": no images / video, "error": 500 detail,
    "moderated": 422 ``content_policy_violation`` after a COMPLETED status). Each endpoint's
    input is checked against its schema (``FAL_SCHEMAS``); a tool endpoint's result carries its
    kind of file (``FAL_OUTPUTS``)."""

    EGG_ENDPOINTS = frozenset(
        {
            "fal-ai/nano-banana",
            "fal-ai/nano-banana/edit",
            "fal-ai/nano-banana-pro",
            "fal-ai/nano-banana-pro/edit",
            "fal-ai/veo3.1",
            "fal-ai/veo3.1/image-to-video",
        }
    )
    ENDPOINTS = frozenset(FAL_SCHEMAS)

    def __init__(self, key: str, files: FakeFiles, pending_polls: int = 0) -> None:
        self.key = key
        self.files = files
        self.pending_polls = pending_polls
        self.hold = threading.Event()  # while set, every request stays IN_PROGRESS
        super().__init__()

    def answer(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Key {self.key}":
            return json_answer(
                401, {"detail": "Unauthorized: wrong or missing 'Authorization: Key'"}
            )
        path = request.path.strip("/")
        if "/requests/" not in path:
            if request.method != "POST" or path not in self.ENDPOINTS:
                return self.refuse(f"unexpected {request.method} {request.path}")
            return self._submit(path, request.json())
        app, request_id = path.split("/requests/")
        request_id, _, action = request_id.partition("/")
        if app.count("/") != 1:
            return self.refuse(f"status/result must use the application id, not {app}")
        job = self.jobs.get(request_id)
        if job is None:
            return json_answer(404, {"detail": "Request not found"})
        return self._on_request(request, request_id, action, job)

    def _on_request(self, request: Request, request_id: str, action: str, job: Job) -> Answer:
        if request.method == "GET" and action == "status":
            return self._status(request_id, job)
        if request.method == "GET" and action == "":
            return self._result(request_id, job)
        if request.method == "PUT" and action == "cancel":
            job.cancelled = True
            return json_answer(202, {"status": "CANCELLATION_REQUESTED"})
        return self.refuse(f"unexpected {request.method} {request.path}")

    def _submit(self, endpoint: str, body: Any) -> Answer:
        mode = self.mode("submit")
        common = self.common(mode)
        if common:
            return common
        if mode == "invalid":
            return json_answer(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "prompt is not allowed",
                            "type": "value_error",
                        }
                    ]
                },
            )
        if mode in ("policy", "retryable"):
            return self._refusal(mode)
        problem = schema_problem(FAL_SCHEMAS[endpoint], body)
        if not problem and endpoint in self.EGG_ENDPOINTS:
            problem = self._check(endpoint, body)
        if problem:
            return self.refuse(f"{endpoint}: {problem}")
        request_id = self.new_id()
        kind = "video" if "veo" in endpoint else "image"
        self.jobs[request_id] = Job(
            kind, self.pending_polls, extra={"endpoint": endpoint, "body": body}
        )
        app = "/".join(endpoint.split("/")[:2])
        base = f"{self.base}/{app}/requests/{request_id}"
        return json_answer(
            200,
            {
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
            },
        )

    @staticmethod
    def _refusal(mode: str) -> Answer:
        """fal's model error: 422 with a typed detail list (and ``X-Fal-Retryable``)."""
        if mode == "retryable":
            item = {
                "loc": ["body", "image_url"],
                "msg": "Failed to download the file.",
                "type": "file_download_error",
            }
            return json_answer(422, {"detail": [item]}, {"X-Fal-Retryable": "true"})
        item = {
            "loc": ["body", "prompt"],
            "msg": "The content could not be processed because it violates the content policy.",
            "type": "content_policy_violation",
            "url": "https://docs.fal.ai/errors#content_policy_violation",
        }
        return json_answer(422, {"detail": [item]}, {"X-Fal-Retryable": "false"})

    def _check(self, endpoint: str, body: Any) -> str | None:
        if not isinstance(body, dict) or not body.get("prompt"):
            return "prompt is required"
        edit = endpoint.endswith(("/edit", "/image-to-video"))
        if "veo" in endpoint:
            return first_problem(
                (
                    body.get("duration") not in ("4s", "6s", "8s"),
                    f"duration {body.get('duration')!r} is not 4s, 6s or 8s",
                ),
                (
                    body.get("resolution") not in ("720p", "1080p", "4k"),
                    "resolution must be 720p, 1080p or 4k",
                ),
                (edit != bool(body.get("image_url")), "image_url belongs to image-to-video only"),
            )
        return first_problem(
            (not 1 <= body.get("num_images", 1) <= 4, "num_images must be 1 to 4"),
            (edit != bool(body.get("image_urls")), "image_urls belong to the /edit endpoints only"),
            ("resolution" in body and "pro" not in endpoint, "nano-banana takes no resolution"),
        )

    def _status(self, request_id: str, job: Job) -> Answer:
        common = self.common(self.mode("status"))
        if common:
            return common
        if self.hold.is_set() or job.polls_left > 0:
            job.polls_left = max(0, job.polls_left - 1)
            return json_answer(202, {"status": "IN_PROGRESS", "request_id": request_id, "logs": []})
        return json_answer(200, {"status": "COMPLETED", "request_id": request_id})

    def _result(self, request_id: str, job: Job) -> Answer:
        mode = self.mode("result")
        common = self.common(mode)
        if common:
            return common
        if mode == "error":
            return json_answer(500, {"detail": "Internal server error"})
        if mode == "moderated":
            return self._refusal("policy")
        endpoint = job.extra["endpoint"]
        if endpoint in FAL_OUTPUTS:
            return self._tool_result(request_id, endpoint, mode)
        if job.kind == "video":
            video = (
                None
                if mode == "filtered"
                else {"url": self.files.url(f"{request_id}.mp4"), "content_type": "video/mp4"}
            )
            return json_answer(200, {"video": video} if video else {"detail": "no video"})
        count = 0 if mode == "filtered" else job.extra["body"].get("num_images", 1)
        images = [
            {"url": self.files.url(f"{request_id}-{i}.png"), "content_type": "image/png"}
            for i in range(count)
        ]
        return json_answer(200, {"images": images, "description": ""})

    def _tool_result(self, request_id: str, endpoint: str, mode: str) -> Answer:
        key, listed, ending = FAL_OUTPUTS[endpoint]
        if mode == "filtered":
            return json_answer(200, {key: [] if listed else None})
        file = {"url": self.files.url(f"{request_id}.{ending}"), "file_name": f"out.{ending}"}
        return json_answer(200, {key: [file] if listed else file})


class FakeReplicate(FakeServer):
    """The Replicate API under ``/v1``. Kinds: ``create``, ``get``; vendor modes of ``create``
    (the prediction's outcome): "ok", "credit" (402: the account is out of credit), "sensitive"
    (failed: flagged as sensitive), "failed" (failed for another reason), "canceled", "list"
    (succeeded, its output a list of URIs).

    Official models (``MODELS``) are created at ``/models/{owner}/{name}/predictions``; community
    models only at ``/predictions`` with a ``version`` (``REPLICATE_VERSIONS``). Inputs are
    checked against ``REPLICATE_SCHEMAS``."""

    MODELS = frozenset(
        {
            "google/nano-banana",
            "google/nano-banana-pro",
            "google/veo-3.1",
            "topazlabs/video-upscale",
            "recraft-ai/recraft-vectorize",
        }
    )
    BODY = frozenset({"version", "input", "webhook", "webhook_events_filter", "stream"})

    def __init__(self, token: str, files: FakeFiles, pending_polls: int = 0) -> None:
        self.token = token
        self.files = files
        self.pending_polls = pending_polls
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.base}/v1"

    def answer(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return json_answer(
                401,
                {
                    "title": "Unauthenticated",
                    "detail": "You did not pass a valid authentication token",
                    "status": 401,
                },
            )
        path = request.path.removeprefix("/v1/")
        if (
            request.method == "POST"
            and path.startswith("models/")
            and path.endswith("/predictions")
        ):
            return self._create(
                path.removeprefix("models/").removesuffix("/predictions"), request.json()
            )
        if request.method == "POST" and path == "predictions":
            return self._create_version(request.json())
        if path.startswith("predictions/"):
            ident, _, action = path.removeprefix("predictions/").partition("/")
            job = self.jobs.get(ident)
            if job is None:
                return json_answer(404, {"detail": "Not found."})
            if request.method == "GET" and not action:
                return self._get(ident, job)
            if request.method == "POST" and action == "cancel":
                job.cancelled = True
                return json_answer(200, self._prediction(ident, job, "canceled"))
        return self.refuse(f"unexpected {request.method} {request.path}")

    def _create(self, model: str, body: Any) -> Answer:
        mode = self.mode("create")
        common = self.common(mode)
        if common:
            return common
        if model not in self.MODELS:
            return self.refuse(f"unknown model {model}")
        problem = self._check(model, body)
        if problem:
            return self.refuse(problem)
        return self._created(model, body["input"], mode)

    def common(self, mode: str) -> Answer | None:
        if mode == "credit":
            return json_answer(
                402,
                {
                    "title": "Insufficient credit",
                    "detail": "You have insufficient credit to run this model. Go to "
                    "https://replicate.com/account/billing#billing to purchase credit.",
                    "status": 402,
                },
            )
        if mode == "429":
            return json_answer(
                429,
                {
                    "title": "Request was throttled.",
                    "detail": "Request was throttled. Expected available in 1 second.",
                    "status": 429,
                    "retry_after": 1,
                },
                {"Retry-After": "1"},
            )
        return super().common(mode)

    def _create_version(self, body: Any) -> Answer:
        """``POST /predictions``: ``version`` is ``<64-hex>``, ``owner/name:<64-hex>`` or, for an
        official model, ``owner/name``."""
        if not isinstance(body, dict) or not set(body) <= self.BODY or "input" not in body:
            return self.refuse('the body must be {"version": ..., "input": {...}}')
        version = str(body.get("version") or "")
        named, _, hexa = version.rpartition(":") if ":" in version else ("", "", version)
        model = REPLICATE_VERSIONS.get(hexa) if len(hexa) == 64 else None
        if version in self.MODELS:
            model = version
        elif model is None or (named and named != model):
            return json_answer(
                422,
                {
                    "title": "Invalid version or not permitted",
                    "detail": "The specified version does not exist (or perhaps you don't have "
                    "permission to use it?)",
                    "status": 422,
                },
            )
        mode = self.mode("create")
        common = self.common(mode)
        if common:
            return common
        problem = self._check(model, {"input": body["input"]})
        if problem:
            return self.refuse(problem)
        return self._created(model, body["input"], mode)

    def _created(self, model: str, given: dict[str, Any], mode: str) -> Answer:
        ident = f"p{self.new_id()}"
        kind = "video" if "veo" in model else "image"
        self.jobs[ident] = Job(
            kind, self.pending_polls, mode, extra={"input": given, "model": model}
        )
        return json_answer(201, self._prediction(ident, self.jobs[ident], "starting"))

    def _check(self, model: str, body: Any) -> str | None:
        if not isinstance(body, dict) or set(body) != {"input"}:
            return 'the body must be {"input": {...}}'
        given = body["input"]
        problem = schema_problem(REPLICATE_SCHEMAS[model], given)
        if problem:
            return f"{model}: {problem}"
        if model != "google/veo-3.1":
            return None
        return first_problem(  # we always send these two, though Veo has defaults
            ("duration" not in given, "duration is missing"),
            ("resolution" not in given, "resolution is missing"),
        ) or _veo_references_problem(given)

    def _get(self, ident: str, job: Job) -> Answer:
        common = self.common(self.mode("get"))
        if common:
            return common
        if job.cancelled:
            return json_answer(200, self._prediction(ident, job, "canceled"))
        if job.polls_left > 0:
            job.polls_left -= 1
            return json_answer(200, self._prediction(ident, job, "processing"))
        status = {"sensitive": "failed", "failed": "failed", "canceled": "canceled"}.get(
            job.outcome, "succeeded"
        )
        return json_answer(200, self._prediction(ident, job, status))

    def _prediction(self, ident: str, job: Job, status: str) -> dict[str, Any]:
        ext = REPLICATE_OUTPUTS[job.extra["model"]]
        error = None
        if status == "failed":
            error = (
                "The input or output was flagged as sensitive. "
                "Please try again with different inputs. (E005)"
                if job.outcome == "sensitive"
                else "Prediction interrupted; please retry (code: PA)"
            )
        return {
            "id": ident,
            "model": job.extra.get("model"),
            "status": status,
            "input": job.extra.get("input"),
            "output": self._output(ident, job, ext) if status == "succeeded" else None,
            "error": error,
            "logs": "",
            "metrics": {"predict_time": 4.25} if status == "succeeded" else {},
            "urls": {
                "get": f"{self.base_url}/predictions/{ident}",
                "cancel": f"{self.base_url}/predictions/{ident}/cancel",
            },
        }

    def _output(self, ident: str, job: Job, ext: str) -> str | list[str]:
        url = self.files.url(f"{ident}.{ext}")
        return [url] if job.outcome == "list" else url
