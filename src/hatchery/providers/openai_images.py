"""``openai``: the OpenAI images API, at OpenAI or on a self-hosted server that speaks it.

The route is the model name the server knows (``gpt-image-1`` unless the catalog says otherwise;
any name is taken, since self-hosted servers name their models freely). It makes the Egg image
models (any model of type image) and the ``generate-image`` tool, synchronously: ``submit``
answers :class:`Finished`, and a task reclaimed after a crash asks again.

    POST /images/generations   JSON {"model", "prompt", "n", "size"}: text to image
    POST /images/edits         multipart: the same fields as form fields, and the reference
                               images as files, ``image`` for one and ``image[]`` for several
                               (as the openai-python SDK sends them)

Both answer ``{"created", "data": [{"b64_json"} | {"url"}], "usage"?}``. The GPT image models
always answer base64 and refuse ``response_format``; other models are asked for
``"response_format": "b64_json"``, and an answer that still gives URLs is downloaded.

Sizes (our aspect ratio, or a tool's ``aspect`` option, mapped to the nearest size the model
takes, by aspect ratio; the models make about one megapixel, so we ask for "1k" only):

    gpt-image-*, chatgpt-image-*   1024x1024, 1536x1024, 1024x1536
    dall-e-3                       1024x1024, 1792x1024, 1024x1792 (one image per request,
                                   no reference images)
    dall-e-2                       1024x1024 (one reference image at most)
    any other name                 WIDTHxHEIGHT of our aspect ratio at about one megapixel,
                                   sides multiples of 64

At most 10 images per request (the API's limit for ``n``); more are several requests at once.

Failures are classified by ``upstream.failure``: a 400 (``moderation_blocked``,
``content_policy_violation``, or any other ``invalid_request_error``) is the API refusing the
input: TerminalError with its message, except the 400s about our account
(``billing_hard_limit_reached``, ``insufficient_quota``): RetryableError, as are 401, 402, 403
and 404 (a key, credit or a model name this server does not have); 429 and 5xx
UpstreamUnreachable. An answer with fewer images than asked for, or bytes that are not an image,
is RetryableError.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

import httpx

from hatchery.domain.tools import TOOLS
from hatchery.providers.base import (
    Artifact,
    Finished,
    Job,
    RetryableError,
    Running,
    TerminalError,
)
from hatchery.providers.inputs import InputFiles
from hatchery.providers.media import (
    Fetch,
    image_artifact,
    image_prompt,
    inline_reference,
    tool_artifact,
)
from hatchery.providers.tool_inputs import aspect_size, tool_aspect
from hatchery.providers.upstream import Upstream
from hatchery.storage import CONTENT_TYPES

ACCOUNT_CODES = frozenset({"billing_hard_limit_reached", "insufficient_quota"})
DEFAULT_MODEL = "gpt-image-1"
MAX_PER_REQUEST = 10  # the API's limit for n
VIDEO_MODELS = frozenset({"veo3.1"})  # the built-in Egg models that are not images
EXTENSIONS = {content_type: ext for ext, content_type in CONTENT_TYPES.items()}
Size = tuple[int, int]


@dataclass(frozen=True)
class Spec:
    """What a model takes: its sizes (None: any), images per request, reference images, and
    whether it takes ``response_format``."""

    sizes: tuple[Size, ...] | None
    per_request: int
    references: int
    response_format: bool


GPT_IMAGE = Spec(((1024, 1024), (1536, 1024), (1024, 1536)), MAX_PER_REQUEST, 16, False)
DALL_E_3 = Spec(((1024, 1024), (1792, 1024), (1024, 1792)), 1, 0, True)
DALL_E_2 = Spec(((1024, 1024),), MAX_PER_REQUEST, 1, True)
SELF_HOSTED = Spec(None, MAX_PER_REQUEST, 16, True)


def spec(model: str) -> Spec:
    if model.startswith(("gpt-image-", "chatgpt-image-")):
        return GPT_IMAGE
    return {"dall-e-3": DALL_E_3, "dall-e-2": DALL_E_2}.get(model, SELF_HOSTED)


def size(model: str, aspect: Size) -> str:
    """The ``size`` to ask ``model`` for, for a ``width:height`` aspect."""
    sizes = spec(model).sizes
    if sizes is None:
        width, height = aspect_size(*aspect)
    else:
        wanted = math.log(aspect[0] / aspect[1])
        width, height = min(sizes, key=lambda s: abs(math.log(s[0] / s[1]) - wanted))
    return f"{width}x{height}"


@dataclass(frozen=True)
class Answer:
    """One request's decoded answer and its ``x-request-id``."""

    body: Any
    request_id: str | None


@dataclass(frozen=True)
class Reference:
    data: bytes
    content_type: str


class OpenAIImagesProvider:
    name = "openai"

    def __init__(self, upstream: Upstream, inputs: InputFiles, fetch: Fetch) -> None:
        self.upstream = upstream
        self.inputs = inputs
        self._fetch = fetch

    def serves(self, model: str) -> bool:
        if model in TOOLS:
            return model == "generate-image"
        return model not in VIDEO_MODELS  # a catalog's own models: unsupported() checks kind

    def route_problem(self, model: str, route: str | None) -> str | None:
        if route is None:
            return None
        if route.endswith(".json") or any(c.isspace() for c in route):
            return f"openai takes the name of an image model (like {DEFAULT_MODEL}), not {route!r}"
        return None

    def unsupported(self, job: Job) -> str | None:
        if job.kind != "image":
            return "it makes images only"
        model = self._model(job)
        most = spec(model).references
        if _reference_count(job) <= most:
            return None
        if most == 0:
            return f"{model} takes no reference images"
        return f"{model} takes at most {most} reference image(s)"

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset({"1k"})

    async def submit(self, job: Job) -> Finished | Running:
        model = self._model(job)
        references = await self._references(job)
        counts = _batches(job.num_outputs, spec(model).per_request)
        try:
            async with asyncio.TaskGroup() as group:
                calls = [
                    group.create_task(self._request(job, model, n, references)) for n in counts
                ]
        except ExceptionGroup as failed:  # the first failure, as the runner knows it
            raise failed.exceptions[0] from None
        answers = [call.result() for call in calls]
        images = [image for answer in answers for image in _images(answer.body)]
        if len(images) < job.num_outputs:
            raise RetryableError(
                f"openai: {model} answered {len(images)} of {job.num_outputs} image(s)"
            )
        artifacts = [await self._artifact(job, model, i) for i in images[: job.num_outputs]]
        return Finished(artifacts, usage=_usage(model, answers))

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        return await self.submit(job)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        return None

    async def _send(self, fields: dict[str, Any], references: list[Reference]) -> httpx.Response:
        if references:
            return await self.upstream.exchange(
                "POST",
                "images/edits",
                files=_files(references),
                data={key: str(value) for key, value in fields.items()},
            )
        return await self.upstream.exchange("POST", "images/generations", fields)

    def _model(self, job: Job) -> str:
        return job.route(self.name) or DEFAULT_MODEL

    async def _references(self, job: Job) -> list[Reference]:
        if job.tool is not None:
            return [
                Reference(await self.inputs.read(f), f.content_type) for f in job.input("image")
            ]
        found = []
        for index, url in enumerate(job.image_urls):
            mime, data = await inline_reference(self._fetch, index, url)
            found.append(Reference(base64.b64decode(data), mime))
        return found

    async def _request(self, job: Job, model: str, n: int, references: list[Reference]) -> Answer:
        """One request for ``n`` images."""
        fields: dict[str, Any] = {
            "model": model,
            "prompt": image_prompt(job),
            "n": n,
            "size": size(model, _aspect(job)),
        }
        if spec(model).response_format:
            fields["response_format"] = "b64_json"
        try:
            response = await self._send(fields, references)
        except TerminalError as exc:
            raise _account_trouble(exc) or exc from None
        what = f"POST images/{'edits' if references else 'generations'}"
        return Answer(self.upstream.json_of(what, response), _request_id(response))

    async def _artifact(self, job: Job, model: str, image: dict[str, Any]) -> Artifact:
        data = await self._bytes(image)
        if job.tool is None:
            return image_artifact(self.name, data)
        return await tool_artifact(self.name, job, data, f"openai {model}")

    async def _bytes(self, image: dict[str, Any]) -> bytes:
        if isinstance(image.get("b64_json"), str):
            try:
                return base64.b64decode(image["b64_json"], validate=True)
            except binascii.Error:
                raise RetryableError("openai: an image's b64_json is not valid base64") from None
        if isinstance(image.get("url"), str):
            return await self.upstream.download(image["url"])
        raise RetryableError("openai: an image in the answer has neither b64_json nor url")


def _reference_count(job: Job) -> int:
    return len(job.input("image")) if job.tool is not None else len(job.image_urls)


def _aspect(job: Job) -> Size:
    if job.tool is not None:
        return tool_aspect(job)
    width, _, height = job.aspect_ratio.partition(":")
    return int(width), int(height)


def _batches(total: int, most: int) -> list[int]:
    """``total`` split into requests of at most ``most`` images."""
    return [min(most, total - start) for start in range(0, total, most)]


def _files(references: list[Reference]) -> list[tuple[str, tuple[str, bytes, str]]]:
    field = "image[]" if len(references) > 1 else "image"
    return [
        (
            field,
            (f"reference-{i + 1}.{EXTENSIONS.get(r.content_type, 'png')}", r.data, r.content_type),
        )
        for i, r in enumerate(references)
    ]


def _request_id(response: httpx.Response) -> str | None:
    ident = response.headers.get("x-request-id")
    return str(ident) if ident else None


def _images(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise RetryableError("openai: the answer has no data list")
    return [item for item in data if isinstance(item, dict)]


def _usage(model: str, answers: list[Answer]) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "upstream_ids": [a.request_id for a in answers if a.request_id],
        "route": model,
        "requests": len(answers),
    }
    reported = [a.body["usage"] for a in answers if isinstance(a.body.get("usage"), dict)]
    if reported:
        usage["tokens"] = {
            ours: sum(int(u.get(theirs) or 0) for u in reported)
            for ours, theirs in (
                ("input", "input_tokens"),
                ("output", "output_tokens"),
                ("total", "total_tokens"),
            )
        }
    return usage


def _account_trouble(exc: TerminalError) -> RetryableError | None:
    """A 400 about our account (out of credit, a spending limit reached) rather than the
    request: another provider may still make it."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if code in ACCOUNT_CODES:
        return RetryableError(str(exc), status=exc.status, body=exc.body)
    return None
