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
    """Serves ``/files/<name>.png|.mp4``; a request carrying credentials is a violation."""

    def answer(self, request: Request) -> Answer:
        if "authorization" in request.headers or "x-goog-api-key" in request.headers:
            self.violations.append(f"credentials sent to the file store: {request.path}")
        if request.path.endswith(".png"):
            return 200, {"Content-Type": "image/png"}, png_bytes()
        if request.path.endswith(".mp4"):
            return 200, {"Content-Type": "video/mp4"}, mp4_bytes()
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
    """The fal queue API. Kinds: ``submit`` (vendor mode "invalid": 422 with detail), ``status``,
    ``result`` (vendor modes "filtered": no images / video, "error": 500 detail)."""

    ENDPOINTS = frozenset(
        {
            "fal-ai/nano-banana",
            "fal-ai/nano-banana/edit",
            "fal-ai/nano-banana-pro",
            "fal-ai/nano-banana-pro/edit",
            "fal-ai/veo3.1",
            "fal-ai/veo3.1/image-to-video",
        }
    )

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
        problem = self._check(endpoint, body)
        if problem:
            return self.refuse(problem)
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


class FakeReplicate(FakeServer):
    """The Replicate API under ``/v1``. Kinds: ``create``, ``get``; vendor modes of ``create``
    (the prediction's outcome): "ok", "sensitive" (failed: flagged as sensitive), "failed"
    (failed for another reason), "canceled"."""

    MODELS = frozenset({"google/nano-banana", "google/nano-banana-pro", "google/veo-3.1"})

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
            return common
        if model not in self.MODELS:
            return self.refuse(f"unknown model {model}")
        problem = self._check(model, body)
        if problem:
            return self.refuse(problem)
        ident = f"p{self.new_id()}"
        kind = "video" if "veo" in model else "image"
        self.jobs[ident] = Job(
            kind, self.pending_polls, mode, extra={"input": body["input"], "model": model}
        )
        return json_answer(201, self._prediction(ident, self.jobs[ident], "starting"))

    def _check(self, model: str, body: Any) -> str | None:
        if set(body) != {"input"} or not body["input"].get("prompt"):
            return 'the body must be {"input": {"prompt": ...}}'
        given = body["input"]
        if model == "google/veo-3.1":
            if given.get("duration") not in (4, 6, 8):
                return f"duration {given.get('duration')!r} is not 4, 6 or 8"
            if given.get("resolution") not in ("720p", "1080p"):
                return "resolution must be 720p or 1080p"
        elif "resolution" in given and model == "google/nano-banana":
            return "nano-banana takes no resolution"
        return None

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
        ext = "mp4" if job.kind == "video" else "png"
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
            "output": self.files.url(f"{ident}.{ext}") if status == "succeeded" else None,
            "error": error,
            "logs": "",
            "metrics": {"predict_time": 4.25} if status == "succeeded" else {},
            "urls": {
                "get": f"{self.base_url}/predictions/{ident}",
                "cancel": f"{self.base_url}/predictions/{ident}/cancel",
            },
        }
