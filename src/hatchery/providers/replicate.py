"""``replicate``: the Replicate predictions API (create, get, cancel).

``POST /models/{owner}/{name}/predictions`` answers with a prediction whose ``id`` is the handle.
The nano-banana models make one image per prediction, so a task of N images creates N predictions
(if one create fails, those already created are cancelled). ``GET /predictions/{id}`` is polled
until each has ``succeeded``; its output URLs expire after about an hour, so they are downloaded
into our storage at once. A ``failed`` prediction whose error says the input was flagged is a
terminal refusal; other failures, ``canceled`` and ``aborted`` are worth another try.

The VideoGen tools run on the models of ``providers.replicate_tools`` (official ones as above,
community ones with ``POST /predictions`` and a version). A generative tool makes one output per
prediction; a tool that makes the same output each time is asked once and its file repeated. A
tool's handle also names the route it ran: ``{"predictions": [...], "route": "owner/name"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hatchery.domain.tools import SAME_EACH_TIME
from hatchery.providers import replicate_tools
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
    tool_artifact,
    veo_duration_problem,
    video_fields,
)
from hatchery.providers.tool_inputs import input_urls
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
        return model in MODELS or replicate_tools.serves(model)

    def route_problem(self, model: str, route: str | None) -> str | None:
        if model in MODELS:
            return fixed_route(self.name, route)
        return replicate_tools.route_problem(model, route)

    def image_sizes(self, model: str) -> frozenset[str]:
        return image_sizes(model in SIZED)

    def unsupported(self, job: Job) -> str | None:
        if job.tool is not None:
            name = job.route(self.name)
            problem = replicate_tools.route_problem(job.tool, name)
            return problem or replicate_tools.route(job.tool, name).problem(job)
        if job.kind != "video":
            return None
        if problem := veo_duration_problem(job):
            return problem
        if job.resolution == "4k":
            return 'its videos are 720p or 1080p (resolution "1k" or "2k")'
        return single_video_problem(job)

    async def submit(self, job: Job) -> Finished | Running:
        if job.tool is not None:
            return await self._submit_tool(job)
        count = 1 if job.kind == "video" else job.num_outputs
        path = f"models/{MODELS[job.model]}/predictions"
        ids = await self._create_all(job, path, {"input": _input(job)}, count)
        return Running({"predictions": ids}, poll_after=POLL_AFTER)

    async def _submit_tool(self, job: Job) -> Running:
        assert self.inputs is not None, "replicate was built without the input files"
        assert job.tool is not None
        route = replicate_tools.route(job.tool, job.route(self.name))
        path, body = route.request(job, await input_urls(job, self.inputs))
        count = 1 if job.tool in SAME_EACH_TIME else job.num_outputs
        ids = await self._create_all(job, path, body, count)
        return Running({"predictions": ids, "route": route.name}, poll_after=POLL_AFTER)

    async def _create_all(self, job: Job, path: str, body: dict[str, Any], count: int) -> list[str]:
        """Create ``count`` predictions; if one fails, cancel those already created."""
        created = await asyncio.gather(
            *(self._create(path, body) for _ in range(count)), return_exceptions=True
        )
        ids = [c for c in created if isinstance(c, str)]
        errors = [c for c in created if isinstance(c, BaseException)]
        if errors:
            await self.cancel(job, {"predictions": ids})
            raise errors[0]
        return ids

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        ids: list[str] = upstream["predictions"]
        predictions = await asyncio.gather(
            *(self.upstream.call("GET", f"predictions/{i}") for i in ids)
        )
        for prediction in predictions:
            _raise_if_failed(prediction)
        if any(p.get("status") != "succeeded" for p in predictions):
            return Running(upstream, poll_after=POLL_AFTER)
        if job.tool is not None:
            return await self._tool_finished(job, upstream, predictions)
        artifacts = [a for p in predictions for a in await self._artifacts(job, p)]
        if len(artifacts) < job.num_outputs:
            raise RetryableError(
                f"replicate: the predictions made {len(artifacts)} of {job.num_outputs} output(s)"
            )
        return Finished(artifacts[: job.num_outputs], usage=_usage(job, predictions))

    async def _tool_finished(
        self, job: Job, upstream: dict[str, Any], predictions: list[dict[str, Any]]
    ) -> Finished:
        """A tool's outputs: every prediction's files (one file repeated for a tool that makes
        the same output each time)."""
        assert job.tool is not None
        route = replicate_tools.route(job.tool, upstream.get("route") or job.route(self.name))
        urls = [u for p in predictions for u in replicate_tools.output_urls(p.get("output"))]
        same = job.tool in SAME_EACH_TIME
        wanted = 1 if same else job.num_outputs
        if len(urls) < wanted:
            raise RetryableError(f"replicate: the predictions made {len(urls)} of {wanted} file(s)")

        async def one(url: str) -> Artifact:
            data = await self.upstream.download(url)
            return await tool_artifact(self.name, job, data, route.made_by)

        made = list(await asyncio.gather(*(one(u) for u in urls[:wanted])))
        usage = {**_usage(job, predictions), "route": route.name}
        return Finished(made * job.num_outputs if same else made, usage=usage)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        for prediction in upstream.get("predictions", []):
            with contextlib.suppress(ProviderError):
                await self.upstream.call("POST", f"predictions/{prediction}/cancel")

    async def _create(self, path: str, body: dict[str, Any]) -> str:
        try:
            prediction = await self.upstream.call("POST", path, body)
        except TerminalError as exc:
            if "version" in body and "version" in str(exc).lower():
                # 422 "Invalid version or not permitted": the catalog's route, not the input
                raise RetryableError(str(exc)) from exc
            raise
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
    if job.kind == "video" and job.tool is None:  # an Egg video's billed seconds
        usage["seconds"] = job.duration
    return usage
