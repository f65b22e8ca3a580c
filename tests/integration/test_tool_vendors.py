"""The VideoGen tools on fal and Replicate, against their strict fakes on 127.0.0.1
(``tests/fake_upstreams.py``): for each route, the body the vendor received (exactly), the input
files as data: URIs or as presigned URLs, the output read from its bytes, one request per output
(or one for a tool that makes the same output each time), cancel, resume from a stored handle,
refusals and outages, and what each route cannot serve."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from hatchery.domain.tools import TOOLS, InputFile
from hatchery.offline import avatar
from hatchery.providers.base import (
    Finished,
    Job,
    RetryableError,
    Running,
    TerminalError,
    UpstreamUnreachable,
)
from hatchery.providers.fal import FalProvider
from hatchery.providers.inputs import InputFiles, data_uri
from hatchery.providers.replicate import ReplicateProvider
from tests.adapter_helpers import drive, upstream
from tests.fake_upstreams import (
    FAL_KEY,
    REPLICATE_TOKEN,
    FakeFal,
    FakeFiles,
    FakeReplicate,
    mp3_bytes,
    mp4_bytes,
    png_bytes,
)

pytestmark = pytest.mark.usefixtures("fresh_fakes")

PRESENTER = avatar.presenters()[0].presenter_id
VOICE = "vg_voic_el_21m00Tcm4TlvDq8ikWAM"
IMAGE = InputFile("file_img", "in/img.png", "IMAGE", "image/png", width=512, height=512)
VIDEO = InputFile("file_vid", "in/vid.mp4", "VIDEO", "video/mp4", seconds=1.0, width=64, height=36)
AUDIO = InputFile("file_aud", "in/aud.mp3", "AUDIO", "audio/mpeg", seconds=1.0)
STORE = {"in/img.png": png_bytes(), "in/vid.mp4": mp4_bytes(), "in/aud.mp3": mp3_bytes()}
FILES = {"image": IMAGE, "video": VIDEO, "audio": AUDIO}


async def read(key: str) -> bytes:
    return STORE[key]


async def sign(key: str, seconds: int) -> str:
    return f"https://bucket.s3.example.com/{key}?X-Amz-Expires={seconds}&X-Amz-Signature=5ig"


def fal_provider(http: httpx.AsyncClient, fal: FakeFal, presigned: bool = False) -> FalProvider:
    up = upstream(http, "fal", fal.base, {"authorization": f"Key {FAL_KEY}"})
    return FalProvider(up, InputFiles(read, sign if presigned else None))


def replicate_provider(
    http: httpx.AsyncClient, replicate: FakeReplicate, presigned: bool = False
) -> ReplicateProvider:
    auth = {"authorization": f"Bearer {REPLICATE_TOKEN}"}
    up = upstream(http, "replicate", replicate.base_url, auth)
    return ReplicateProvider(up, InputFiles(read, sign if presigned else None))


def tool_job(
    tool: str,
    *inputs: str,
    prompt: str = "",
    num_outputs: int = 1,
    duration: int = 0,
    routes: dict[str, str] | None = None,
    **options: Any,
) -> Job:
    """A tool execution's job reading ``inputs`` (roles: image, video, audio)."""
    return Job(
        task_id="exe_test",
        model=tool,
        kind=TOOLS[tool].output.value,
        prompt=prompt,
        negative_prompt=None,
        num_outputs=num_outputs,
        duration=duration,
        aspect_ratio="",
        resolution="",
        tool=tool,
        inputs=tuple((role, FILES[role]) for role in inputs),
        options=options,
        routes=routes or {},
    )


def expected(body: Any, presigned: bool) -> Any:
    """``body`` with ``<image>``, ``<video>``, ``<audio>``, ``<presenter>`` as sent."""
    if isinstance(body, dict):
        return {k: expected(v, presigned) for k, v in body.items()}
    if isinstance(body, list):
        return [expected(v, presigned) for v in body]
    if body == "<presenter>":
        return data_uri(avatar.image_png(avatar.presenter(PRESENTER)), "image/png")  # type: ignore[arg-type]
    if isinstance(body, str) and body.startswith("<") and body.endswith(">"):
        file = FILES[body[1:-1]]
        if presigned:
            return (
                f"https://bucket.s3.example.com/{file.key}?X-Amz-Expires=7200&X-Amz-Signature=5ig"
            )
        return data_uri(STORE[file.key], file.content_type)
    return body


SPEECH = {  # no voice_id: fal speaks its default voice only
    "speed": 1.5,
    "language": "en",
    "replacements": [["SQL", "sequel"]],
    "auto_expand": False,
}
SAID = "Ask SQL, not SQLite."
# (job, the endpoint it is sent to, the input fal received, the output: extension, width, height)
FAL_ROUTES = [
    (
        tool_job("remove-image-background", "image"),
        "fal-ai/birefnet/v2",
        {"image_url": "<image>", "output_format": "png"},
        ("png", 64, 36),
    ),
    (
        tool_job(
            "remove-image-background", "image", routes={"fal": "fal-ai/bria/background/remove"}
        ),
        "fal-ai/bria/background/remove",
        {"image_url": "<image>"},
        ("png", 64, 36),
    ),
    (
        tool_job("remove-video-background", "video", duration=1),
        "veed/video-background-removal",
        {"video_url": "<video>", "output_codec": "vp9"},
        ("webm", 64, 36),
    ),
    (
        tool_job(
            "remove-video-background",
            "video",
            duration=1,
            routes={"fal": "fal-ai/birefnet/v2/video"},
        ),
        "fal-ai/birefnet/v2/video",
        {"video_url": "<video>", "video_output_type": "VP9 (.webm)"},
        ("webm", 64, 36),
    ),
    (
        tool_job("upscale-image", "image"),
        "fal-ai/topaz/upscale/image",
        {"image_url": "<image>", "upscale_factor": 2, "output_format": "png"},
        ("png", 128, 72),
    ),
    (
        tool_job("upscale-image", "image", routes={"fal": "fal-ai/esrgan"}),
        "fal-ai/esrgan",
        {"image_url": "<image>", "scale": 2},
        ("png", 128, 72),
    ),
    (
        tool_job("upscale-video", "video", duration=1),
        "fal-ai/topaz/upscale/video",
        {"video_url": "<video>", "upscale_factor": 2, "H264_output": True},
        ("mp4", 128, 72),
    ),
    (
        tool_job("upscale-video", "video", duration=1, routes={"fal": "fal-ai/video-upscaler"}),
        "fal-ai/video-upscaler",
        {"video_url": "<video>", "scale": 2},
        ("mp4", 128, 72),
    ),
    (
        tool_job("vectorize-image", "image"),
        "fal-ai/recraft/vectorize",
        {"image_url": "<image>"},
        ("svg", 64, 36),
    ),
    (
        tool_job("vectorize-image", "image", routes={"fal": "fal-ai/image2svg"}),
        "fal-ai/image2svg",
        {"image_url": "<image>"},
        ("svg", 64, 36),
    ),
    (
        tool_job("generate-avatar", "audio", duration=1, presenter_id=PRESENTER),
        "veed/fabric-1.0",
        {"image_url": "<presenter>", "audio_url": "<audio>", "resolution": "720p"},
        ("mp4", 64, 36),
    ),
    (
        tool_job(
            "generate-avatar",
            "audio",
            duration=1,
            presenter_id=PRESENTER,
            routes={"fal": "fal-ai/kling-video/ai-avatar/v2/standard"},
        ),
        "fal-ai/kling-video/ai-avatar/v2/standard",
        {"image_url": "<presenter>", "audio_url": "<audio>"},
        ("mp4", 64, 36),
    ),
    (
        tool_job("generate-image", prompt="a red fox", aspect=[4, 3]),
        "fal-ai/nano-banana",
        {"prompt": "a red fox", "num_images": 1, "aspect_ratio": "4:3", "output_format": "png"},
        ("png", 64, 36),
    ),
    (
        tool_job("generate-image", "image", prompt="a red fox", aspect=[7, 3]),
        "fal-ai/nano-banana/edit",
        {
            "prompt": "a red fox",
            "num_images": 1,
            "aspect_ratio": "21:9",
            "output_format": "png",
            "image_urls": ["<image>"],
        },
        ("png", 64, 36),
    ),
    (
        tool_job(
            "generate-video-clip", prompt="waves", duration=6, aspect=[9, 16], generate_audio=True
        ),
        "fal-ai/veo3.1",
        {
            "prompt": "waves",
            "duration": "6s",
            "aspect_ratio": "9:16",
            "resolution": "720p",
            "generate_audio": True,
        },
        ("mp4", 64, 36),
    ),
    (
        tool_job("generate-video-clip", "image", prompt="waves", duration=4, aspect=[16, 9]),
        "fal-ai/veo3.1/image-to-video",
        {
            "prompt": "waves",
            "duration": "4s",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "generate_audio": False,
            "image_url": "<image>",
        },
        ("mp4", 64, 36),
    ),
    (
        tool_job(
            "generate-video-clip", "image", "image", prompt="waves", duration=8, aspect=[1, 1]
        ),
        "fal-ai/veo3.1/reference-to-video",
        {
            "prompt": "waves",
            "duration": "8s",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "generate_audio": False,
            "image_urls": ["<image>", "<image>"],
        },
        ("mp4", 64, 36),
    ),
    (
        tool_job("generate-video-clip", "video", prompt="as a watercolour", duration=1),
        "fal-ai/kling-video/o1/video-to-video/reference",
        {"prompt": "as a watercolour", "video_url": "<video>", "keep_audio": True},
        ("mp4", 64, 36),
    ),
    (
        tool_job("text-to-speech", prompt=SAID, **SPEECH),
        "fal-ai/elevenlabs/tts/multilingual-v2",
        {
            "text": "Ask sequel, not SQLite.",
            "speed": 1.2,
            "language_code": "en",
        },
        ("mp3", None, None),
    ),
    (
        tool_job("text-to-speech", prompt="Hello.", speed=0.5, auto_expand=True),
        "fal-ai/elevenlabs/tts/multilingual-v2",
        {"text": "Hello.", "speed": 0.7, "apply_text_normalization": "on"},
        ("mp3", None, None),
    ),
    (
        tool_job("generate-sound-effect", prompt="a door slams", seconds=2.5, influence=0.6),
        "fal-ai/elevenlabs/sound-effects/v2",
        {"text": "a door slams", "duration_seconds": 2.5, "prompt_influence": 0.6},
        ("mp3", None, None),
    ),
]


def _case_id(case: Any) -> str:
    return f"{case[0].tool}->{case[1]}"


@pytest.mark.parametrize("presigned", [False, True], ids=["data-uri", "presigned"])
@pytest.mark.parametrize(
    ("work", "endpoint", "body", "output"), FAL_ROUTES, ids=[_case_id(c) for c in FAL_ROUTES]
)
async def test_fal_tool_routes(
    http: httpx.AsyncClient,
    fal: FakeFal,
    files: FakeFiles,
    presigned: bool,
    work: Job,
    endpoint: str,
    body: dict[str, Any],
    output: tuple[str, int | None, int | None],
) -> None:
    fal.pending_polls = 1
    provider = fal_provider(http, fal, presigned)
    assert provider.serves(work.model) and provider.unsupported(work) is None
    result, handles = await drive(provider, work)
    (submit,) = fal.seen("POST", "/")
    assert submit.path == f"/{endpoint}"
    assert submit.json() == expected(body, presigned)
    request_id = handles[0]["requests"][0]["request_id"]
    assert handles == [{"requests": [{"endpoint": endpoint, "request_id": request_id}]}] * 2
    (artifact,) = result.artifacts
    assert (artifact.extension, artifact.width, artifact.height) == output
    assert artifact.description is not None and artifact.description.startswith(f"fal {endpoint} (")
    if work.kind in ("audio", "video"):
        assert artifact.seconds is not None and artifact.seconds > 0
    assert result.usage == {"upstream_ids": [request_id], "route": endpoint}
    assert all("authorization" not in r.headers for r in files.requests)


async def test_fal_makes_same_each_time_outputs_once_and_generative_ones_per_request(
    http: httpx.AsyncClient, fal: FakeFal
) -> None:
    provider = fal_provider(http, fal)
    same, _ = await drive(provider, tool_job("upscale-image", "image", num_outputs=3))
    assert len(fal.seen("POST", "/")) == 1
    assert [a.data for a in same.artifacts] == [same.artifacts[0].data] * 3
    fal.reset()
    clips, handles = await drive(
        provider, tool_job("generate-video-clip", prompt="rain", duration=4, num_outputs=3)
    )
    assert len(fal.seen("POST", "/fal-ai/veo3.1")) == 3 and len(clips.artifacts) == 3
    assert len(handles[0]["requests"]) == 3
    assert len(clips.usage["upstream_ids"]) == 3


async def test_fal_nano_banana_asks_for_four_images_per_request(
    http: httpx.AsyncClient, fal: FakeFal
) -> None:
    work = tool_job("generate-image", prompt="a red fox", num_outputs=10)
    result, _ = await drive(fal_provider(http, fal), work)
    assert sorted(r.json()["num_images"] for r in fal.seen("POST", "/")) == [2, 4, 4]
    assert len(result.artifacts) == 10


async def test_fal_cancel_reaches_every_request(http: httpx.AsyncClient, fal: FakeFal) -> None:
    provider = fal_provider(http, fal)
    work = tool_job("generate-sound-effect", prompt="a bell", seconds=1.0, num_outputs=2)
    running = await provider.submit(work)
    assert isinstance(running, Running)
    await provider.cancel(work, running.upstream)
    ids = [r["request_id"] for r in running.upstream["requests"]]
    assert all(fal.jobs[i].cancelled for i in ids)
    assert sorted(r.path for r in fal.seen("PUT", "/cancel")) == sorted(
        f"/fal-ai/elevenlabs/requests/{i}/cancel" for i in ids
    )


async def test_fal_resumes_from_a_stored_handle_without_submitting_again(
    http: httpx.AsyncClient, fal: FakeFal
) -> None:
    work = tool_job("vectorize-image", "image")
    running = await fal_provider(http, fal).submit(work)
    assert isinstance(running, Running)
    stored = dict(running.upstream)  # what the runner kept; a new worker resumes with it
    done = await fal_provider(http, fal).poll(work, stored)
    assert isinstance(done, Finished) and done.artifacts[0].extension == "svg"
    assert len(fal.seen("POST", "/")) == 1


async def test_fal_still_reads_a_single_request_handle(
    http: httpx.AsyncClient, fal: FakeFal
) -> None:
    work = tool_job("remove-image-background", "image", num_outputs=2)
    running = await fal_provider(http, fal).submit(work)
    assert isinstance(running, Running)
    (request,) = running.upstream["requests"]  # stored as a server before the upgrade would
    done = await fal_provider(http, fal).poll(work, request)
    assert isinstance(done, Finished) and len(done.artifacts) == 2
    await fal_provider(http, fal).cancel(work, request)
    assert fal.jobs[request["request_id"]].cancelled


@pytest.mark.parametrize(
    ("kind", "mode", "error", "message"),
    [
        ("submit", "policy", TerminalError, "HTTP 422: prompt: The content could not be"),
        ("result", "moderated", TerminalError, "violates the content policy"),
        ("result", "filtered", TerminalError, "fal returned 0 of 1 output"),
        ("submit", "429", UpstreamUnreachable, "HTTP 429"),
        ("submit", "503", UpstreamUnreachable, "HTTP 503"),
        ("result", "error", RetryableError, "HTTP 500: Internal server error"),  # model failed
    ],
)
async def test_fal_tool_failures_are_classified(
    http: httpx.AsyncClient,
    fal: FakeFal,
    kind: str,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    fal.plan(kind, mode)
    with pytest.raises(error, match=message) as caught:
        await drive(fal_provider(http, fal), tool_job("generate-image", prompt="a red fox"))
    assert type(caught.value) is error


async def test_fal_honours_x_fal_retryable_on_a_422(http: httpx.AsyncClient, fal: FakeFal) -> None:
    fal.plan("submit", "retryable")
    with pytest.raises(RetryableError) as caught:
        await fal_provider(http, fal).submit(tool_job("upscale-image", "image"))
    assert not isinstance(caught.value, TerminalError)


async def test_fal_cancels_the_requests_it_queued_when_one_fails(
    http: httpx.AsyncClient, fal: FakeFal
) -> None:
    fal.plan("submit", "ok", "500")
    work = tool_job("generate-sound-effect", prompt="a bell", seconds=1.0, num_outputs=2)
    with pytest.raises(UpstreamUnreachable):
        await fal_provider(http, fal).submit(work)
    (queued,) = fal.jobs.values()
    assert queued.cancelled


@pytest.mark.parametrize(
    ("work", "reason"),
    [
        (
            tool_job("generate-video-clip", prompt="waves", duration=5),
            "duration must be 4, 6 or 8 seconds",
        ),
        (
            tool_job("generate-video-clip", "image", "image", prompt="waves", duration=6),
            "a video from several reference images must be 8 seconds long",
        ),
        (
            tool_job("generate-video-clip", "image", duration=8),
            "it needs a prompt",
        ),
        (
            tool_job("generate-sound-effect", prompt="wind", seconds=25.0),
            "its sound effects last 0.5 to 22 seconds",
        ),
        (
            tool_job("text-to-speech", prompt="Hi", voice_id="vg_voic_0123456789a"),
            "it speaks its default voice only, not vg_voic_0123456789a",
        ),
        (
            tool_job("text-to-speech", prompt="Hi", voice_id=VOICE),
            f"it speaks its default voice only, not {VOICE}",
        ),
        (
            replace(
                tool_job("upscale-image", "image"),
                inputs=(("image", replace(IMAGE, width=2100, height=2100)),),
            ),
            "Topaz makes 2x outputs up to 16.8 megapixels here; this image (2100x2100) would "
            "make 17.6",
        ),
        (
            tool_job("generate-image", prompt="ox"),
            "its prompt must be 3 characters or more",
        ),
        (
            tool_job(
                "generate-video-clip",
                prompt="waves",
                duration=8,
                routes={"fal": "fal-ai/kling-video/o1/video-to-video/reference"},
            ),
            "it only restyles an input video",
        ),
    ],
)
def test_fal_says_what_it_cannot_serve(work: Job, reason: str) -> None:
    assert FalProvider(None).unsupported(work) == reason  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("width", "height", "fits"),
    [(512, 512, True), (256, 512, False), (4096, 1024, False), (4000, 4000, False)],
)
def test_the_recraft_vectorizer_says_its_size_limits(width: int, height: int, fits: bool) -> None:
    image = InputFile("file_x", "in/x.png", "IMAGE", "image/png", width=width, height=height)
    work = tool_job("vectorize-image")
    work = Job(**{**work.__dict__, "inputs": (("image", image),)})
    reason = (
        "Recraft vectorizes images whose sides are over 256 and under 4096 pixels and under 16 "
        f"megapixels (this one is {width}x{height})"
    )
    for provider in (FalProvider(None), ReplicateProvider(None)):  # type: ignore[arg-type]
        assert provider.unsupported(work) == (None if fits else reason)
    routed = Job(**{**work.__dict__, "routes": {"fal": "fal-ai/image2svg"}})
    assert FalProvider(None).unsupported(routed) is None  # type: ignore[arg-type]


def test_fal_checks_tool_routes() -> None:
    provider = FalProvider(None)  # type: ignore[arg-type]
    assert provider.route_problem("upscale-image", None) is None
    assert provider.route_problem("upscale-image", "fal-ai/esrgan") is None
    assert provider.route_problem("upscale-image", "fal-ai/clarity-upscaler") == (
        "fal runs upscale-image with fal-ai/esrgan, fal-ai/topaz/upscale/image, "
        "not 'fal-ai/clarity-upscaler'"
    )
    assert provider.route_problem("nanobanana", "fal-ai/nano-banana") is not None  # fixed
    assert provider.serves("text-to-speech") and provider.serves("nanobanana")


# -- Replicate ---------------------------------------------------------------------------------

REMOVE_BG = "95fcc2a26d3899cd6c2691c900465aaeff466285a65c14638cc5f36f34befaf1"
ESRGAN = "42fed1c4974146d4d4414e2be2c5277c7fcf05fde3b22e94cee859b8a4a39d44"
SADTALKER = "3aa3dac9353cc4d6bd62a8f95957bd844003b401ca4e4a9b33baa574c549d376"
COMMUNITY = {
    REMOVE_BG: "lucataco/remove-bg",
    ESRGAN: "nightmareai/real-esrgan",
    SADTALKER: "cjwbw/sadtalker",
}


def route_of(path: str, body: dict[str, Any]) -> str:
    """The route a create call runs: ``owner/name`` or ``owner/name:<version>``."""
    if "version" in body:
        return f"{COMMUNITY[body['version']]}:{body['version']}"
    return path.removeprefix("/v1/models/").removesuffix("/predictions")


# (job, the create path, the body, the output: extension, width, height)
REPLICATE_ROUTES = [
    (
        tool_job("remove-image-background", "image"),
        "/v1/predictions",
        {"version": REMOVE_BG, "input": {"image": "<image>"}},
        ("png", 64, 36),
    ),
    (
        tool_job("upscale-image", "image"),
        "/v1/predictions",
        {"version": ESRGAN, "input": {"image": "<image>", "scale": 2}},
        ("png", 128, 72),
    ),
    (
        tool_job("upscale-video", "video", duration=1),
        "/v1/models/topazlabs/video-upscale/predictions",
        {"input": {"video": "<video>", "target_resolution": "720p"}},
        ("mp4", 128, 72),
    ),
    (
        tool_job("vectorize-image", "image"),
        "/v1/models/recraft-ai/recraft-vectorize/predictions",
        {"input": {"image": "<image>"}},
        ("svg", 64, 36),
    ),
    (
        tool_job("generate-avatar", "audio", duration=1, presenter_id=PRESENTER),
        "/v1/predictions",
        {"version": SADTALKER, "input": {"source_image": "<presenter>", "driven_audio": "<audio>"}},
        ("mp4", 64, 36),
    ),
    (
        tool_job("generate-image", "image", prompt="a red fox", aspect=[3, 4]),
        "/v1/models/google/nano-banana/predictions",
        {
            "input": {
                "prompt": "a red fox",
                "aspect_ratio": "3:4",
                "output_format": "png",
                "image_input": ["<image>"],
            }
        },
        ("png", 64, 36),
    ),
    (
        tool_job("generate-video-clip", "image", prompt="waves", duration=6, generate_audio=True),
        "/v1/models/google/veo-3.1/predictions",
        {
            "input": {
                "prompt": "waves",
                "aspect_ratio": "16:9",
                "duration": 6,
                "resolution": "720p",
                "generate_audio": True,
                "image": "<image>",
            }
        },
        ("mp4", 64, 36),
    ),
    (
        tool_job("generate-video-clip", "image", "image", prompt="waves", duration=8),
        "/v1/models/google/veo-3.1/predictions",
        {
            "input": {
                "prompt": "waves",
                "aspect_ratio": "16:9",
                "duration": 8,
                "resolution": "720p",
                "generate_audio": False,
                "reference_images": ["<image>", "<image>"],
            }
        },
        ("mp4", 64, 36),
    ),
]


@pytest.mark.parametrize("presigned", [False, True], ids=["data-uri", "presigned"])
@pytest.mark.parametrize(
    ("work", "path", "body", "output"),
    REPLICATE_ROUTES,
    ids=[f"{c[0].tool}->{c[1]}" for c in REPLICATE_ROUTES],
)
async def test_replicate_tool_routes(
    http: httpx.AsyncClient,
    replicate: FakeReplicate,
    files: FakeFiles,
    presigned: bool,
    work: Job,
    path: str,
    body: dict[str, Any],
    output: tuple[str, int, int],
) -> None:
    replicate.pending_polls = 1
    provider = replicate_provider(http, replicate, presigned)
    assert provider.serves(work.model) and provider.unsupported(work) is None
    result, handles = await drive(provider, work)
    (create,) = replicate.seen("POST", "/predictions")
    assert create.path == path
    assert create.json() == expected(body, presigned)
    (ident,) = handles[0]["predictions"]
    assert handles == [{"predictions": [ident], "route": route_of(path, body)}] * 2
    (artifact,) = result.artifacts
    assert (artifact.extension, artifact.width, artifact.height) == output
    assert artifact.description is not None and artifact.description.startswith("replicate ")
    assert result.usage["upstream_ids"] == [ident] and result.usage["predict_seconds"] == 4.25
    assert all("authorization" not in r.headers for r in files.requests)


async def test_replicate_reads_an_output_list_and_repeats_a_same_each_time_output(
    http: httpx.AsyncClient, replicate: FakeReplicate
) -> None:
    replicate.plan("create", "list")
    result, _ = await drive(
        replicate_provider(http, replicate), tool_job("upscale-image", "image", num_outputs=3)
    )
    assert len(replicate.seen("POST", "/predictions")) == 1
    assert [a.extension for a in result.artifacts] == ["png"] * 3
    assert result.usage["route"] == f"nightmareai/real-esrgan:{ESRGAN}"


async def test_replicate_makes_one_prediction_per_generated_output(
    http: httpx.AsyncClient, replicate: FakeReplicate
) -> None:
    work = tool_job("generate-image", prompt="a red fox", num_outputs=3)
    result, handles = await drive(replicate_provider(http, replicate), work)
    assert len(replicate.seen("POST", "/models/google/nano-banana/predictions")) == 3
    assert len(handles[0]["predictions"]) == 3 and len(result.artifacts) == 3


async def test_replicate_resumes_a_tool_and_cancels_it(
    http: httpx.AsyncClient, replicate: FakeReplicate
) -> None:
    work = tool_job("generate-avatar", "audio", duration=1, presenter_id=PRESENTER, num_outputs=2)
    running = await replicate_provider(http, replicate).submit(work)
    assert isinstance(running, Running)
    done = await replicate_provider(http, replicate).poll(work, dict(running.upstream))
    assert isinstance(done, Finished) and len(done.artifacts) == 2
    assert len(replicate.seen("POST", "/predictions")) == 2
    await replicate_provider(http, replicate).cancel(work, running.upstream)
    assert all(job.cancelled for job in replicate.jobs.values())


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("sensitive", TerminalError, "flagged as sensitive"),
        ("429", UpstreamUnreachable, "HTTP 429: Request was throttled"),
        ("500", UpstreamUnreachable, "HTTP 500"),
    ],
)
async def test_replicate_tool_failures_are_classified(
    http: httpx.AsyncClient,
    replicate: FakeReplicate,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    replicate.plan("create", mode)
    with pytest.raises(error, match=message) as caught:
        await drive(
            replicate_provider(http, replicate), tool_job("remove-image-background", "image")
        )
    assert type(caught.value) is error


async def test_replicate_runs_the_catalogs_version_and_an_unknown_one_is_not_terminal(
    http: httpx.AsyncClient, replicate: FakeReplicate
) -> None:
    other = "f" * 64
    work = tool_job(
        "upscale-image", "image", routes={"replicate": f"nightmareai/real-esrgan:{other}"}
    )
    with pytest.raises(
        RetryableError, match="HTTP 422: The specified version does not exist"
    ) as caught:
        await replicate_provider(http, replicate).submit(work)
    assert type(caught.value) is RetryableError  # our catalog's fault: another provider may serve
    (create,) = replicate.seen("POST", "/predictions")
    assert create.json()["version"] == other


def test_replicate_checks_tool_routes_and_values() -> None:
    provider = ReplicateProvider(None)  # type: ignore[arg-type]
    assert provider.route_problem("upscale-image", f"nightmareai/real-esrgan:{'a' * 64}") is None
    assert provider.route_problem("upscale-image", "nightmareai/real-esrgan") == (
        "nightmareai/real-esrgan is a community model: name it owner/name:<64-hex version>"
    )
    assert provider.route_problem("generate-image", f"google/nano-banana:{'a' * 64}") == (
        "google/nano-banana is an official model: name it owner/name, with no version"
    )
    assert provider.route_problem("upscale-image", "philz1337x/clarity-upscaler") == (
        f"replicate runs upscale-image with nightmareai/real-esrgan:{ESRGAN}, "
        "not 'philz1337x/clarity-upscaler'"
    )
    assert not provider.serves("text-to-speech") and not provider.serves("generate-sound-effect")
    clip = tool_job("generate-video-clip", "video", prompt="restyle", duration=4)
    assert (
        provider.unsupported(clip) == "google/veo-3.1 on Replicate does not restyle an input video"
    )
    refs = tool_job("generate-video-clip", "image", "image", prompt="x", duration=8, aspect=[9, 16])
    assert provider.unsupported(refs) == "a video from several reference images is 16:9"
    assert provider.unsupported(tool_job("generate-video-clip", prompt="x", duration=7)) == (
        "duration must be 4, 6 or 8 seconds"
    )


# -- the fakes are strict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "problem"),
    [
        (
            "veed/fabric-1.0",
            {"image_url": "https://a/b.png", "audio_url": "https://a/c.mp3"},
            "missing fields ['resolution']",
        ),
        (
            "fal-ai/esrgan",
            {"image_url": "https://a/b.png", "scale": 2, "face_enhance": True},
            "unknown fields ['face_enhance']",
        ),
        (
            "fal-ai/elevenlabs/sound-effects/v2",
            {"text": "x", "duration_seconds": 30},
            "out of range 0.5 to 22",
        ),
        (
            "veed/video-background-removal",
            {"video_url": "https://a/b.mp4", "output_codec": "vp8"},
            "is not one of",
        ),
        ("fal-ai/birefnet/v2", {"image_url": "http://10.0.0.1/in.png"}, "neither an https URL nor"),
        ("fal-ai/birefnet/v2", {"image_url": data_uri(b"not a png", "image/png")}, "not an image"),
        (
            "fal-ai/topaz/upscale/image",
            {"image_url": "https://a/b.png", "upscale_factor": True},
            "not of type num",
        ),
    ],
)
async def test_the_fal_fake_refuses_what_fal_would(
    http: httpx.AsyncClient, fal: FakeFal, endpoint: str, body: dict[str, Any], problem: str
) -> None:
    answer = await http.post(
        f"{fal.base}/{endpoint}", json=body, headers={"authorization": f"Key {FAL_KEY}"}
    )
    assert answer.status_code == 400
    (violation,) = fal.violations
    assert problem in violation
    fal.violations.clear()


async def test_the_replicate_fake_takes_community_models_only_with_a_version(
    http: httpx.AsyncClient, replicate: FakeReplicate
) -> None:
    auth = {"authorization": f"Bearer {REPLICATE_TOKEN}"}
    answer = await http.post(
        f"{replicate.base_url}/models/nightmareai/real-esrgan/predictions",
        json={"input": {"image": "https://a/b.png"}},
        headers=auth,
    )
    assert answer.status_code == 400 and replicate.violations == [
        "unknown model nightmareai/real-esrgan"
    ]
    replicate.violations.clear()
    answer = await http.post(
        f"{replicate.base_url}/predictions",
        json={
            "version": f"nightmareai/real-esrgan:{ESRGAN}",
            "input": {"image": "https://a/b.png"},
        },
        headers=auth,
    )
    assert answer.status_code == 201  # the documented owner/name:version form works as well
