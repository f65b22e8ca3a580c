"""Each vendor adapter against its fake upstream on 127.0.0.1 (``tests/fake_upstreams.py``): the
requests it sends (paths, credentials, body fields, which the fakes check strictly), and how it
reads success, a job still running, an error operation, a safety refusal, 429, 500, a hang past
our timeout and a redirected download."""

from __future__ import annotations

import gzip
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from hatchery.providers.base import (
    Finished,
    Job,
    RetryableError,
    Running,
    TerminalError,
    UpstreamUnreachable,
)
from hatchery.providers.fal import FalProvider
from hatchery.providers.gemini import GeminiProvider
from hatchery.providers.replicate import ReplicateProvider
from hatchery.providers.upstream import Upstream
from hatchery.providers.veo import VeoProvider
from tests.adapter_helpers import drive, upstream
from tests.fake_upstreams import (
    FAL_KEY,
    REPLICATE_TOKEN,
    UPSTREAM_TIMEOUT,
    FakeFal,
    FakeFiles,
    FakeGoogle,
    FakeReplicate,
    png_bytes,
)
from tests.fake_upstreams import GOOGLE_KEY as KEY
from tests.helpers import LocalHTTPServer

TOKEN = REPLICATE_TOKEN
TIMEOUT = UPSTREAM_TIMEOUT

pytestmark = pytest.mark.usefixtures("fresh_fakes")


async def reference(url: str) -> bytes:
    assert url == "https://example.com/ref.png"  # never fetched for real: handed over here
    return png_bytes((0, 128, 255))


def gemini(http: httpx.AsyncClient, google: FakeGoogle) -> GeminiProvider:
    return GeminiProvider(
        upstream(http, "gemini", google.base_url, {"x-goog-api-key": KEY}), reference
    )


def veo(http: httpx.AsyncClient, google: FakeGoogle) -> VeoProvider:
    return VeoProvider(upstream(http, "veo", google.base_url, {"x-goog-api-key": KEY}), reference)


def fal_provider(http: httpx.AsyncClient, fal: FakeFal) -> FalProvider:
    return FalProvider(upstream(http, "fal", fal.base, {"authorization": f"Key {FAL_KEY}"}))


def replicate_provider(http: httpx.AsyncClient, replicate: FakeReplicate) -> ReplicateProvider:
    auth = {"authorization": f"Bearer {TOKEN}"}
    return ReplicateProvider(upstream(http, "replicate", replicate.base_url, auth))


def job(model: str = "nanobanana", **params: Any) -> Job:
    video = model == "veo3.1"
    values = {
        "prompt": "a red fox in the snow",
        "negative_prompt": None,
        "num_outputs": 1,
        "duration": 8 if video else 5,
        "aspect_ratio": "16:9",
        "resolution": "1k",
        "image_urls": [],
        **params,
    }
    return Job.from_params("gen_test", model, "video" if video else "image", values)


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# -- Gemini images ---------------------------------------------------------------------------


async def test_gemini_sends_one_generate_content_call_per_output_and_reads_the_inline_image(
    http: httpx.AsyncClient, google: FakeGoogle
) -> None:
    work = job(
        "nanobanana-pro",
        num_outputs=2,
        resolution="2k",
        aspect_ratio="9:16",
        negative_prompt="people",
        image_urls=["https://example.com/ref.png"],
    )
    result, handles = await drive(gemini(http, google), work)
    assert handles == []  # synchronous: nothing to resume
    calls = google.seen("POST", ":generateContent")
    assert [c.path for c in calls] == [
        "/v1beta/models/gemini-3-pro-image-preview:generateContent"
    ] * 2
    body = calls[0].json()
    parts = body["contents"][0]["parts"]
    assert parts[0]["text"] == "a red fox in the snow\n\nAvoid: people"
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "9:16", "imageSize": "2K"}
    assert [(a.extension, image_size(a.data)) for a in result.artifacts] == [("png", (64, 36))] * 2
    assert result.artifacts[0].data == png_bytes()  # the image part, not the thought part
    assert result.usage["tokens"] == {"prompt": 24, "output": 2580, "total": 2604}
    assert len(result.usage["upstream_ids"]) == 2


async def test_gemini_flash_image_sends_no_image_size(
    http: httpx.AsyncClient, google: FakeGoogle
) -> None:
    await drive(gemini(http, google), job("nanobanana"))
    (call,) = google.seen("POST", "gemini-2.5-flash-image:generateContent")
    assert call.json()["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert call.headers["x-goog-api-key"] == KEY


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("blocked", TerminalError, "gemini refused the prompt (SAFETY)"),
        ("safety", TerminalError, "finishReason IMAGE_SAFETY"),
        ("text", RetryableError, "gemini answered without an image: Here is your image."),
        ("429", UpstreamUnreachable, "HTTP 429: RESOURCE_EXHAUSTED: Resource has been exhausted"),
        ("500", UpstreamUnreachable, "HTTP 500: INTERNAL: upstream trouble"),
        ("hang", UpstreamUnreachable, "did not answer within 1.5s"),
        ("drop", UpstreamUnreachable, "failed (RemoteProtocolError"),
        ("badkey", RetryableError, "HTTP 400: INVALID_ARGUMENT: API key not valid."),
    ],
)
async def test_gemini_failures_are_classified(
    http: httpx.AsyncClient, google: FakeGoogle, mode: str, error: type[Exception], message: str
) -> None:
    google.plan("generate", mode)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        await gemini(http, google).submit(job())
    assert type(caught.value) is error
    if mode == "429":
        assert caught.value.retry_after == 1.0  # type: ignore[attr-defined]


def test_gemini_says_which_sizes_its_models_make_and_refuses_too_many_references() -> None:
    provider = GeminiProvider(None, reference)  # type: ignore[arg-type]
    assert provider.image_sizes("nanobanana") == {"1k"}
    assert provider.image_sizes("nanobanana-pro") == {"1k", "2k", "4k"}
    assert provider.unsupported(job("nanobanana", resolution="2k")) is None  # made at 1k
    assert provider.unsupported(job("nanobanana", image_urls=["https://a/b.png"] * 15)) == (
        "gemini-2.5-flash-image takes at most 14 reference images"
    )
    assert provider.serves("nanobanana") and not provider.serves("veo3.1")


def test_every_vendor_makes_nanobanana_at_1k_only_and_pro_at_every_size() -> None:
    for provider in (FalProvider(None), ReplicateProvider(None)):  # type: ignore[arg-type]
        assert provider.image_sizes("nanobanana") == {"1k"}, provider.name
        assert provider.image_sizes("nanobanana-pro") == {"1k", "2k", "4k"}, provider.name
        assert provider.unsupported(job("nanobanana", resolution="4k")) is None


# -- Veo ---------------------------------------------------------------------------------------


async def test_veo_submits_once_polls_until_done_and_downloads_through_the_redirect(
    http: httpx.AsyncClient, google: FakeGoogle, files: FakeFiles
) -> None:
    google.pending_polls = 3
    work = job(
        "veo3.1",
        duration=6,
        aspect_ratio="9:16",
        negative_prompt="rain",
        image_urls=["https://example.com/ref.png"],
    )
    result, handles = await drive(veo(http, google), work)
    (submit,) = google.seen("POST", ":predictLongRunning")
    assert submit.path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    body = submit.json()
    assert body["instances"][0]["prompt"] == "a red fox in the snow"
    assert body["instances"][0]["image"]["mimeType"] == "image/png"
    assert body["parameters"] == {
        "aspectRatio": "9:16",
        "resolution": "720p",
        "durationSeconds": 6,
        "sampleCount": 1,
        "negativePrompt": "rain",
    }
    operation = handles[0]["operation"]
    assert handles == [{"operation": operation}] * 4  # done:false three times, then done
    assert len(google.seen("GET", "/operations/")) == 4
    (download,) = google.seen("GET", ":download")
    assert download.headers["x-goog-api-key"] == KEY
    (stored,) = files.seen("GET", ".mp4")
    assert "x-goog-api-key" not in stored.headers  # the key stayed with Google
    (video,) = result.artifacts
    assert (video.extension, video.width, video.height, video.seconds) == ("mp4", 720, 1280, 6.0)
    assert video.data[4:8] == b"ftyp"
    assert result.usage == {"upstream_ids": [operation], "seconds": 6}


@pytest.mark.parametrize(
    ("outcome", "error", "message"),
    [
        ("error", RetryableError, r"the operation failed \(code 13\): Internal error"),
        ("invalid", TerminalError, r"the operation failed \(code 3\)"),
        ("filtered", TerminalError, "safety filters blocked 1 video"),
    ],
)
async def test_veo_reads_a_failed_operation(
    http: httpx.AsyncClient, google: FakeGoogle, outcome: str, error: type[Exception], message: str
) -> None:
    google.plan("veo", outcome)
    with pytest.raises(error, match=message) as caught:
        await drive(veo(http, google), job("veo3.1"))
    assert not isinstance(caught.value, UpstreamUnreachable)


@pytest.mark.parametrize("mode", ["429", "500", "hang"])
async def test_veo_poll_without_an_answer_is_unreachable_and_the_operation_survives(
    http: httpx.AsyncClient, google: FakeGoogle, mode: str
) -> None:
    provider = veo(http, google)
    running = await provider.submit(job("veo3.1"))
    assert isinstance(running, Running)
    google.plan("operation", mode)
    with pytest.raises(UpstreamUnreachable):
        await provider.poll(job("veo3.1"), running.upstream)
    done = await provider.poll(job("veo3.1"), running.upstream)  # the same operation, later
    assert isinstance(done, Finished) and len(done.artifacts) == 1
    assert len(google.seen("POST", ":predictLongRunning")) == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [("429", UpstreamUnreachable), ("500", UpstreamUnreachable), ("hang", UpstreamUnreachable)],
)
async def test_veo_submit_failures(
    http: httpx.AsyncClient, google: FakeGoogle, mode: str, error: type[Exception]
) -> None:
    google.plan("veo", mode)
    with pytest.raises(error):
        await veo(http, google).submit(job("veo3.1"))


def test_veo_refuses_durations_and_sizes_it_cannot_make() -> None:
    provider = VeoProvider(None, reference)  # type: ignore[arg-type]
    assert provider.unsupported(job("veo3.1", duration=5)) == "duration must be 4, 6 or 8 seconds"
    assert provider.unsupported(job("veo3.1", duration=4, resolution="2k")) == (
        "a 1080p video must be 8 seconds long"
    )
    assert provider.unsupported(job("veo3.1", duration=8, resolution="4k")) is None


async def test_a_download_that_fails_is_classified(
    http: httpx.AsyncClient, google: FakeGoogle
) -> None:
    provider = veo(http, google)
    running = await provider.submit(job("veo3.1"))
    assert isinstance(running, Running)
    google.plan("download", "500")
    with pytest.raises(UpstreamUnreachable, match="download answered HTTP 500"):
        await provider.poll(job("veo3.1"), running.upstream)


async def test_a_wrong_key_is_not_the_inputs_fault(
    http: httpx.AsyncClient, google: FakeGoogle
) -> None:
    provider = VeoProvider(
        upstream(http, "veo", google.base_url, {"x-goog-api-key": "wrong"}), reference
    )
    with pytest.raises(RetryableError, match="HTTP 401") as caught:
        await provider.submit(job("veo3.1"))
    assert not isinstance(caught.value, UpstreamUnreachable)


# -- fal ---------------------------------------------------------------------------------------


async def test_fal_queues_polls_status_and_fetches_the_result(
    http: httpx.AsyncClient, fal: FakeFal, files: FakeFiles
) -> None:
    fal.pending_polls = 2
    work = job(
        "nanobanana-pro", num_outputs=3, resolution="4k", image_urls=["https://example.com/ref.png"]
    )
    result, handles = await drive(fal_provider(http, fal), work)
    (submit,) = fal.seen("POST", "fal-ai/")
    assert submit.path == "/fal-ai/nano-banana-pro/edit"
    assert submit.headers["authorization"] == f"Key {FAL_KEY}"
    assert submit.json() == {
        "prompt": "a red fox in the snow",
        "num_images": 3,
        "aspect_ratio": "16:9",
        "output_format": "png",
        "resolution": "4K",
        "image_urls": ["https://example.com/ref.png"],
    }
    request_id = handles[0]["request_id"]
    assert handles == [{"endpoint": "fal-ai/nano-banana-pro/edit", "request_id": request_id}] * 3
    statuses = fal.seen("GET", "/status")
    assert [s.path for s in statuses] == [
        f"/fal-ai/nano-banana-pro/requests/{request_id}/status"
    ] * 3
    assert len(result.artifacts) == 3 and all(a.extension == "png" for a in result.artifacts)
    assert all("authorization" not in r.headers for r in files.requests)  # CDN: no key


async def test_fal_video_uses_its_string_durations(http: httpx.AsyncClient, fal: FakeFal) -> None:
    result, _ = await drive(fal_provider(http, fal), job("veo3.1", duration=4, resolution="2k"))
    (submit,) = fal.seen("POST", "fal-ai/")
    assert submit.path == "/fal-ai/veo3.1"
    assert submit.json() == {
        "prompt": "a red fox in the snow",
        "aspect_ratio": "16:9",
        "duration": "4s",
        "resolution": "1080p",
        "generate_audio": True,
    }
    assert result.artifacts[0].extension == "mp4" and result.usage["seconds"] == 4


@pytest.mark.parametrize(
    ("kind", "mode", "error", "message"),
    [
        ("result", "filtered", TerminalError, "fal returned 0 of 1 output"),
        ("result", "error", RetryableError, "HTTP 500: Internal server error"),  # model failed
        ("submit", "invalid", TerminalError, "HTTP 422: prompt: prompt is not allowed"),
        ("submit", "429", UpstreamUnreachable, "HTTP 429"),
        ("submit", "500", UpstreamUnreachable, "HTTP 500"),
        ("submit", "hang", UpstreamUnreachable, "did not answer within"),
    ],
)
async def test_fal_failures_are_classified(
    http: httpx.AsyncClient,
    fal: FakeFal,
    kind: str,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    fal.plan(kind, mode)
    with pytest.raises(error, match=message) as caught:
        await drive(fal_provider(http, fal), job())
    assert type(caught.value) is error


async def test_fal_cancel_reaches_the_queue(http: httpx.AsyncClient, fal: FakeFal) -> None:
    provider = fal_provider(http, fal)
    running = await provider.submit(job("veo3.1"))
    assert isinstance(running, Running)
    await provider.cancel(job("veo3.1"), running.upstream)
    assert fal.jobs[running.upstream["request_id"]].cancelled
    (cancel,) = fal.seen("PUT", "/cancel")
    assert cancel.path == f"/fal-ai/veo3.1/requests/{running.upstream['request_id']}/cancel"


# -- Replicate ---------------------------------------------------------------------------------


async def test_replicate_creates_one_prediction_per_image_and_polls_each(
    http: httpx.AsyncClient, replicate: FakeReplicate, files: FakeFiles
) -> None:
    replicate.pending_polls = 2
    result, handles = await drive(replicate_provider(http, replicate), job(num_outputs=2))
    creates = replicate.seen("POST", "/predictions")
    assert [c.path for c in creates] == ["/v1/models/google/nano-banana/predictions"] * 2
    assert creates[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert creates[0].json() == {
        "input": {"prompt": "a red fox in the snow", "aspect_ratio": "16:9", "output_format": "png"}
    }
    ids = handles[0]["predictions"]
    assert len(ids) == 2 and handles == [{"predictions": ids}] * 3
    assert {r.path for r in replicate.seen("GET", "/predictions/")} == {
        f"/v1/predictions/{i}" for i in ids
    }
    assert len(result.artifacts) == 2
    assert result.usage == {"upstream_ids": ids, "predict_seconds": 8.5}
    assert all("authorization" not in r.headers for r in files.requests)


async def test_replicate_video_input(http: httpx.AsyncClient, replicate: FakeReplicate) -> None:
    work = job(
        "veo3.1", duration=6, image_urls=["https://example.com/ref.png"], negative_prompt="fog"
    )
    result, _ = await drive(replicate_provider(http, replicate), work)
    (create,) = replicate.seen("POST", "/predictions")
    assert create.path == "/v1/models/google/veo-3.1/predictions"
    assert create.json()["input"] == {
        "prompt": "a red fox in the snow",
        "aspect_ratio": "16:9",
        "duration": 6,
        "resolution": "720p",
        "generate_audio": True,
        "negative_prompt": "fog",
        "image": "https://example.com/ref.png",
    }
    assert result.artifacts[0].seconds == 6.0


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("sensitive", TerminalError, "flagged as sensitive"),
        ("failed", RetryableError, "Prediction interrupted"),
        ("canceled", RetryableError, "canceled"),
        ("credit", RetryableError, "HTTP 402: You have insufficient credit"),  # ours: fall back
        ("429", UpstreamUnreachable, "HTTP 429: Request was throttled"),
        ("500", UpstreamUnreachable, "HTTP 500"),
        ("hang", UpstreamUnreachable, "did not answer within"),
    ],
)
async def test_replicate_failures_are_classified(
    http: httpx.AsyncClient,
    replicate: FakeReplicate,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    replicate.plan("create", mode)
    with pytest.raises(error, match=message) as caught:
        await drive(replicate_provider(http, replicate), job())
    assert type(caught.value) is error
    if mode == "429":
        assert caught.value.retry_after == 1.0  # type: ignore[attr-defined]


async def test_replicate_cancels_what_it_created_when_a_create_fails(
    http: httpx.AsyncClient, replicate: FakeReplicate
) -> None:
    replicate.plan("create", "ok", "500")
    with pytest.raises(UpstreamUnreachable):
        await replicate_provider(http, replicate).submit(job(num_outputs=2))
    created = [p for p in replicate.jobs.values()]
    assert len(created) == 1 and created[0].cancelled
    assert len(replicate.seen("POST", "/cancel")) == 1


def test_replicate_refuses_4k_video() -> None:
    provider = ReplicateProvider(None)  # type: ignore[arg-type]
    assert provider.unsupported(job("veo3.1", resolution="4k")) == (
        'its videos are 720p or 1080p (resolution "1k" or "2k")'
    )


# -- downloads ---------------------------------------------------------------------------------


async def test_downloads_are_capped_and_redirect_loops_end(
    http: httpx.AsyncClient, files: FakeFiles
) -> None:
    small = Upstream(
        "x", http, files.base, {"authorization": "Key k"}, timeout=TIMEOUT, max_bytes=100
    )
    with pytest.raises(RetryableError, match="larger than 100 B"):
        await small.download(files.url("big.png"))
    with pytest.raises(RetryableError, match="HTTP 404"):
        await small.download(files.url("missing.gif"))
    files.violations.clear()  # this Upstream's origin *is* the file store: it sent its key
    loop = LocalHTTPServer(lambda path, method: (302, {"Location": path}, b""))
    try:
        with pytest.raises(RetryableError, match="redirected more than 5 times"):
            await small.download(loop.url("/again"))
    finally:
        loop.close()
    assert [r.path for r in loop.received] == ["/again"] * 6


async def test_whole_answers_are_capped_too_and_read_decoded(http: httpx.AsyncClient) -> None:
    """``exchange`` (the vendors whose answer is the output: ElevenLabs, ComfyUI's /view) keeps
    the same cap as a download, and a compressed answer reads as its decoded bytes."""

    def respond(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/zipped":
            body = gzip.compress(b'{"made": "yes"}')
            return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, body
        if path == "/refused":
            return 400, {"Content-Type": "application/json"}, b'{"detail": "no"}'
        return 200, {"Content-Type": "audio/mpeg"}, b"\xff" * 500

    server = LocalHTTPServer(respond)
    try:
        small = Upstream("x", http, server.url(""), {}, timeout=TIMEOUT, max_bytes=100)
        assert await small.call("GET", "zipped") == {"made": "yes"}
        with pytest.raises(RetryableError, match="the answer to GET big is larger than 100 B"):
            await small.exchange("GET", "big")
        kept = await small.exchange("GET", "refused", keep={400})
        assert (kept.status_code, kept.json()) == (400, {"detail": "no"})
        with pytest.raises(TerminalError, match="HTTP 400: no") as refused:
            await small.exchange("GET", "refused")
        assert (refused.value.status, refused.value.body) == (400, {"detail": "no"})
    finally:
        server.close()


async def test_an_image_that_is_not_an_image_is_retryable(
    http: httpx.AsyncClient, fal: FakeFal, files: FakeFiles
) -> None:
    provider = fal_provider(http, fal)
    running = await provider.submit(job())
    assert isinstance(running, Running)
    original = files.answer
    files.answer = lambda request: (200, {"Content-Type": "image/png"}, b"<html>oops</html>")  # type: ignore[method-assign]
    try:
        with pytest.raises(RetryableError, match="not a readable image"):
            await provider.poll(job(), running.upstream)
    finally:
        files.answer = original  # type: ignore[method-assign]
