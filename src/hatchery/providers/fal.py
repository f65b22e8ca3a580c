"""``fal``: the fal queue API (submit, status, result, cancel).

``POST /{endpoint}`` queues a request and answers with its ``request_id``: the handle. The status
and result live under the endpoint's application (``fal-ai/veo3.1/image-to-video`` is polled at
``fal-ai/veo3.1/requests/{id}/status``). A completed request's result names its files by URL; they
are downloaded into our storage before the task completes. An error result is classified like any
other answer (a 422 is the model refusing the input; a 5xx is worth another try), and a completed
result with no file is the model's safety checker at work: terminal.
"""

from __future__ import annotations

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

# our model -> (text endpoint, endpoint with reference images)
MODELS = {
    "nanobanana": ("fal-ai/nano-banana", "fal-ai/nano-banana/edit"),
    "nanobanana-pro": ("fal-ai/nano-banana-pro", "fal-ai/nano-banana-pro/edit"),
    "veo3.1": ("fal-ai/veo3.1", "fal-ai/veo3.1/image-to-video"),
}
SIZED = frozenset({"nanobanana-pro"})
WAITING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
POLL_AFTER = 2.0


class FalProvider:
    name = "fal"

    def __init__(self, upstream: Upstream, inputs: InputFiles | None = None) -> None:
        self.upstream = upstream
        self.inputs = inputs

    def serves(self, model: str) -> bool:
        return model in MODELS

    def route_problem(self, model: str, route: str | None) -> str | None:
        return fixed_route(self.name, route)

    def unsupported(self, job: Job) -> str | None:
        if job.kind == "video":
            return veo_duration_problem(job) or single_video_problem(job)
        return None

    def image_sizes(self, model: str) -> frozenset[str]:
        return image_sizes(model in SIZED)

    async def submit(self, job: Job) -> Finished | Running:
        text, edit = MODELS[job.model]
        endpoint = edit if job.image_urls else text
        answer = await self.upstream.call("POST", endpoint, _input(job))
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise RetryableError(f"fal: POST {endpoint} answered without a request_id")
        return Running({"endpoint": endpoint, "request_id": request_id}, poll_after=POLL_AFTER)

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        base = _requests_path(upstream)
        state = await self.upstream.call("GET", f"{base}/status")
        status = state.get("status") if isinstance(state, dict) else None
        if status in WAITING:
            return Running(upstream, poll_after=POLL_AFTER)
        if status != "COMPLETED":
            raise RetryableError(f"fal: request {upstream['request_id']} is in status {status!r}")
        result = await self.upstream.call("GET", base)
        artifacts = await self._artifacts(job, result)
        usage = {"upstream_ids": [upstream["request_id"]], "endpoint": upstream["endpoint"]}
        if job.kind == "video":
            usage["seconds"] = job.duration
        return Finished(artifacts, usage=usage)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        await self.upstream.call("PUT", f"{_requests_path(upstream)}/cancel")

    async def _artifacts(self, job: Job, result: Any) -> list[Artifact]:
        urls = _output_urls(job, result)
        if len(urls) < job.num_outputs:
            raise TerminalError(
                f"fal returned {len(urls)} of {job.num_outputs} output(s) for this prompt "
                "(its safety checker filtered the rest)"
            )
        return [
            job_artifact(self.name, job, await self.upstream.download(url))
            for url in urls[: job.num_outputs]
        ]


def _requests_path(upstream: dict[str, Any]) -> str:
    app = "/".join(str(upstream["endpoint"]).split("/")[:2])
    return f"{app}/requests/{upstream['request_id']}"


def _input(job: Job) -> dict[str, Any]:
    if job.kind == "video":
        body = {**video_fields(job), "duration": f"{job.duration}s"}
        if job.image_urls:
            body["image_url"] = job.image_urls[0]
        return body
    body = {
        "prompt": image_prompt(job),
        "num_images": job.num_outputs,
        "aspect_ratio": job.aspect_ratio,
        "output_format": "png",
    }
    if job.model in SIZED:
        body["resolution"] = job.resolution.upper()
    if job.image_urls:
        body["image_urls"] = list(job.image_urls)
    return body


def _output_urls(job: Job, result: Any) -> list[str]:
    if not isinstance(result, dict):
        raise RetryableError("fal: the result is not a JSON object")
    if job.kind == "video":
        video = result.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        return [url] if isinstance(url, str) else []
    images = result.get("images") or []
    return [i["url"] for i in images if isinstance(i, dict) and isinstance(i.get("url"), str)]
