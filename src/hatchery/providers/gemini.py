"""``gemini``: Google's Gemini API image models ("nano banana"), a synchronous upstream.

``POST /models/{model}:generateContent`` answers with the image inline as base64. The API has no
"number of images" field, so a task of N outputs makes N calls (at once). There is nothing to
resume: a task reclaimed after a crash calls again.

A refusal (``promptFeedback.blockReason``, or a ``finishReason`` other than ``STOP`` with no image)
is terminal; an answer that is only text is retried, since the model sometimes just talks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from hatchery.providers.base import (
    Artifact,
    Finished,
    Job,
    RetryableError,
    Running,
    TerminalError,
    fixed_route,
)
from hatchery.providers.media import (
    Fetch,
    image_artifact,
    image_prompt,
    image_sizes,
    inline_reference,
)
from hatchery.providers.upstream import Upstream

MODELS = {
    "nanobanana": "gemini-2.5-flash-image",
    "nanobanana-pro": "gemini-3-pro-image-preview",
}
SIZED = frozenset({"gemini-3-pro-image-preview"})  # accepts imageConfig.imageSize
MAX_REFERENCES = 14


class GeminiProvider:
    name = "gemini"

    def __init__(self, upstream: Upstream, fetch: Fetch) -> None:
        self.upstream = upstream
        self._fetch = fetch

    def serves(self, model: str) -> bool:
        return model in MODELS

    def route_problem(self, model: str, route: str | None) -> str | None:
        return fixed_route(self.name, route)

    def image_sizes(self, model: str) -> frozenset[str]:
        return image_sizes(MODELS[model] in SIZED)

    def unsupported(self, job: Job) -> str | None:
        vendor_model = MODELS[job.model]
        if len(job.image_urls) > MAX_REFERENCES:
            return f"{vendor_model} takes at most {MAX_REFERENCES} reference images"
        return None

    async def submit(self, job: Job) -> Finished | Running:
        body = await self._request(job)
        path = f"models/{MODELS[job.model]}:generateContent"
        answers = await asyncio.gather(
            *(self.upstream.call("POST", path, body) for _ in range(job.num_outputs))
        )
        artifacts = [image for answer in answers for image in self._images(answer)]
        return Finished(artifacts[: job.num_outputs], usage=_usage(answers))

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        return await self.submit(job)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        return None

    async def _request(self, job: Job) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": image_prompt(job)}]
        for index, url in enumerate(job.image_urls):
            mime, data = await inline_reference(self._fetch, index, url)
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        image_config = {"aspectRatio": job.aspect_ratio}
        if MODELS[job.model] in SIZED:
            image_config["imageSize"] = job.resolution.upper()
        return {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {
                "responseModalities": ["TEXT", "IMAGE"],
                "imageConfig": image_config,
            },
        }

    def _images(self, answer: Any) -> list[Artifact]:
        if not isinstance(answer, dict):
            raise RetryableError("gemini: generateContent answered with something not an object")
        blocked = (answer.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise TerminalError(f"gemini refused the prompt ({blocked})")
        candidates = answer.get("candidates") or []
        if not candidates:
            raise RetryableError("gemini: generateContent answered with no candidates")
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        images = [_decode(p["inlineData"]) for p in parts if _is_image(p)]
        if images:
            return [image_artifact(self.name, data) for data in images]
        reason = candidate.get("finishReason") or "none"
        text = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str)).strip()
        said = f": {text[:200]}" if text else ""
        if reason != "STOP":
            raise TerminalError(f"gemini refused to make the image (finishReason {reason}){said}")
        raise RetryableError(f"gemini answered without an image{said}")


def _is_image(part: Any) -> bool:
    """An image part of the answer (Gemini 3's thought parts can carry draft images: skipped)."""
    return isinstance(part, dict) and "inlineData" in part and not part.get("thought")


def _decode(inline: Any) -> bytes:
    try:
        return base64.b64decode(inline["data"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise RetryableError("gemini: an inlineData part is not valid base64") from None


def _usage(answers: list[Any]) -> dict[str, Any]:
    tokens = {"prompt": 0, "output": 0, "total": 0}
    fields = {
        "prompt": "promptTokenCount",
        "output": "candidatesTokenCount",
        "total": "totalTokenCount",
    }
    for answer in answers:
        metadata = answer.get("usageMetadata") or {}
        for ours, theirs in fields.items():
            value = metadata.get(theirs)
            tokens[ours] += value if isinstance(value, int) else 0
    return {
        "upstream_ids": [a.get("responseId") for a in answers if a.get("responseId")],
        "model_version": next((a["modelVersion"] for a in answers if a.get("modelVersion")), None),
        "tokens": tokens,
    }
