"""``replicate``: the Replicate predictions API (create, get, cancel).

``POST /models/{owner}/{name}/predictions`` answers with a prediction whose ``id`` is the handle.
The nano-banana models make one image per prediction, so a task of N images creates N predictions
(if one create fails, those already created are cancelled). ``GET /predictions/{id}`` is polled
until each has ``succeeded``; its output URLs expire after about an hour, so they are downloaded
into our storage at once. A ``failed`` prediction whose error says the input was flagged is a
terminal refusal; other failures, ``canceled`` and ``aborted`` are worth another try.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hatchery.providers.base import (
    Artifact,
    Finished,
    Job,
    ProviderError,
    RetryableError,
    Running,
    TerminalError,
    fixed_route,
)
from hatchery.providers.inputs import InputFiles
from hatchery.providers.media import (
    image_prompt,
    image_sizes,
    job_artifact,
    single_video_problem,
    veo_duration_problem,
    video_fields,
)
from hatchery.providers.upstream import Upstream

MODELS = {
    "nanobanana": "google/nano-banana",
    "nanobanana-pro": "google/nano-banana-pro",
    "veo3.1": "google/veo-3.1",
}
SIZED = frozenset({"nanobanana-pro"})
WAITING = frozenset({"starting", "processing"})
REFUSALS = ("sensitive", "flagged", "nsfw", "safety", "e005")
POLL_AFTER = 2.0


class ReplicateProvider:
    name = "replicate"

    def __init__(self, upstream: Upstream, inputs: InputFiles | None = None) -> None:
        self.upstream = upstream
        self.inputs = inputs

    def serves(self, model: str) -> bool:
        return model in MODELS

    def route_problem(self, model: str, route: str | None) -> str | None:
        return fixed_route(self.name, route)

    def image_sizes(self, model: str) -> frozenset[str]:
        return image_sizes(model in SIZED)

    def unsupported(self, job: Job) -> str | None:
        if job.kind != "video":
            return None
        if problem := veo_duration_problem(job):
            return problem
        if job.resolution == "4k":
            return 'its videos are 720p or 1080p (resolution "1k" or "2k")'
        return single_video_problem(job)

    async def submit(self, job: Job) -> Finished | Running:
        count = 1 if job.kind == "video" else job.num_outputs
        path = f"models/{MODELS[job.model]}/predictions"
        body = {"input": _input(job)}
        created = await asyncio.gather(
            *(self._create(path, body) for _ in range(count)), return_exceptions=True
        )
        ids = [c for c in created if isinstance(c, str)]
        errors = [c for c in created if isinstance(c, BaseException)]
        if errors:
            await self.cancel(job, {"predictions": ids})
            raise errors[0]
        return Running({"predictions": ids}, poll_after=POLL_AFTER)

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        ids: list[str] = upstream["predictions"]
        predictions = await asyncio.gather(
            *(self.upstream.call("GET", f"predictions/{i}") for i in ids)
        )
        for prediction in predictions:
            _raise_if_failed(prediction)
        if any(p.get("status") != "succeeded" for p in predictions):
            return Running(upstream, poll_after=POLL_AFTER)
        artifacts = [a for p in predictions for a in await self._artifacts(job, p)]
        if len(artifacts) < job.num_outputs:
            raise RetryableError(
                f"replicate: the predictions made {len(artifacts)} of {job.num_outputs} output(s)"
            )
        return Finished(artifacts[: job.num_outputs], usage=_usage(job, predictions))

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        for prediction in upstream.get("predictions", []):
            with contextlib.suppress(ProviderError):
                await self.upstream.call("POST", f"predictions/{prediction}/cancel")

    async def _create(self, path: str, body: dict[str, Any]) -> str:
        prediction = await self.upstream.call("POST", path, body)
        ident = prediction.get("id") if isinstance(prediction, dict) else None
        if not isinstance(ident, str) or not ident:
            raise RetryableError(f"replicate: POST {path} answered without a prediction id")
        return ident

    async def _artifacts(self, job: Job, prediction: dict[str, Any]) -> list[Artifact]:
        output = prediction.get("output")
        urls = [output] if isinstance(output, str) else output if isinstance(output, list) else []
        return [
            job_artifact(self.name, job, await self.upstream.download(url))
            for url in urls
            if isinstance(url, str)
        ]


def _raise_if_failed(prediction: Any) -> None:
    if not isinstance(prediction, dict):
        raise RetryableError("replicate: a prediction is not a JSON object")
    status = prediction.get("status")
    if status in WAITING or status == "succeeded":
        return
    error = str(prediction.get("error") or "")
    said = f": {error}" if error else ""
    text = f"replicate: prediction {prediction.get('id')} {status}{said}"
    if status == "failed" and any(word in error.lower() for word in REFUSALS):
        raise TerminalError(text)
    raise RetryableError(text)


def _input(job: Job) -> dict[str, Any]:
    if job.kind == "video":
        body = {**video_fields(job), "duration": job.duration}
        if job.image_urls:
            body["image"] = job.image_urls[0]
        return body
    body = {"prompt": image_prompt(job), "aspect_ratio": job.aspect_ratio, "output_format": "png"}
    if job.model in SIZED:
        body["resolution"] = job.resolution.upper()
    if job.image_urls:
        body["image_input"] = list(job.image_urls)
    return body


def _usage(job: Job, predictions: list[dict[str, Any]]) -> dict[str, Any]:
    predict = [(p.get("metrics") or {}).get("predict_time") for p in predictions]
    usage: dict[str, Any] = {
        "upstream_ids": [p.get("id") for p in predictions],
        "predict_seconds": round(sum(t for t in predict if isinstance(t, int | float)), 3),
    }
    if job.kind == "video":
        usage["seconds"] = job.duration
    return usage
