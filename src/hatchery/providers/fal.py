"""``fal``: the fal queue API (submit, status, result, cancel).

``POST /{endpoint}`` queues a request and answers with its ``request_id``: the handle. The status
and result live under the endpoint's application (``fal-ai/veo3.1/image-to-video`` is polled at
``fal-ai/veo3.1/requests/{id}/status``). A completed request's result names its files by URL; they
are downloaded into our storage before the task completes. An error result is classified like any
other answer (a 422 is the model refusing the input), except that a 5xx answer to a completed
request's result is its model failing: the next provider, at once (asking again would get the
same answer until the deadline). A completed result with no file is the model's safety checker
at work: terminal. A moderated request may also
show ``COMPLETED`` and then answer the result GET with 422 ``content_policy_violation``: terminal
the same way.

The VideoGen tools run on the endpoints of ``providers.fal_tools``. A tool execution may need
several requests (one per output, or four images per request for nano-banana), so its handle is
``{"requests": [{"endpoint", "request_id"}, ...]}``; the Egg models' single-request handle
``{"endpoint", "request_id"}`` is still read everywhere (tasks in flight across an upgrade). A
tool that makes the same output each time is asked once and its file repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hatchery.domain.tools import SAME_EACH_TIME
from hatchery.providers import fal_tools
from hatchery.providers.base import (
    Artifact,
    Finished,
    Job,
    ProviderError,
    RetryableError,
    Running,
    TerminalError,
    UpstreamUnreachable,
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
from hatchery.providers.tool_inputs import input_urls, request_sizes
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
        return model in MODELS or model in fal_tools.ROUTES

    def route_problem(self, model: str, route: str | None) -> str | None:
        if model in MODELS:
            return fixed_route(self.name, route)
        return fal_tools.route_problem(model, route)

    def unsupported(self, job: Job) -> str | None:
        if job.tool is not None:
            return fal_tools.unsupported(job, job.route(self.name))
        if job.kind == "video":
            return veo_duration_problem(job) or single_video_problem(job)
        return None

    def image_sizes(self, model: str) -> frozenset[str]:
        return image_sizes(model in SIZED)

    async def submit(self, job: Job) -> Finished | Running:
        if job.tool is not None:
            return await self._submit_tool(job)
        text, edit = MODELS[job.model]
        endpoint = edit if job.image_urls else text
        request = await self._queue(endpoint, _input(job))
        return Running(request, poll_after=POLL_AFTER)

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        if job.tool is not None:
            return await self._poll_tool(job, upstream)
        if not await self._completed(upstream):
            return Running(upstream, poll_after=POLL_AFTER)
        result = await self._result(upstream)
        artifacts = await self._artifacts(job, result)
        usage = {"upstream_ids": [upstream["request_id"]], "endpoint": upstream["endpoint"]}
        if job.kind == "video":
            usage["seconds"] = job.duration
        return Finished(artifacts, usage=usage)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        """Cancel every request of the handle; the first failure is raised once all were tried."""
        failures = []
        for request in _requests(upstream):
            try:
                await self.upstream.call("PUT", f"{_requests_path(request)}/cancel")
            except ProviderError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    async def _queue(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """Queue one request: its handle ``{"endpoint", "request_id"}``."""
        answer = await self.upstream.call("POST", endpoint, body)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise RetryableError(f"fal: POST {endpoint} answered without a request_id")
        return {"endpoint": endpoint, "request_id": request_id}

    async def _result(self, request: dict[str, Any]) -> Any:
        """A completed request's result. fal shows a request whose model failed as COMPLETED and
        answers its result with the error: a 5xx there is that failure (the next provider), not
        fal being busy, and asking again would only get it again until the deadline."""
        try:
            return await self.upstream.call("GET", _requests_path(request))
        except UpstreamUnreachable as exc:
            if exc.status is None or exc.status < 500:
                raise  # no answer, or 429: ask again
            raise RetryableError(str(exc), status=exc.status, body=exc.body) from None

    async def _completed(self, request: dict[str, Any]) -> bool:
        """Whether the request is done (False while it is queued or running)."""
        state = await self.upstream.call("GET", f"{_requests_path(request)}/status")
        status = state.get("status") if isinstance(state, dict) else None
        if status in WAITING:
            return False
        if status != "COMPLETED":
            raise RetryableError(f"fal: request {request['request_id']} is in status {status!r}")
        return True

    async def _submit_tool(self, job: Job) -> Running:
        """Queue the requests of a tool execution; if one fails, cancel those already queued."""
        assert self.inputs is not None, "fal was built without the input files"
        endpoint = fal_tools.route(str(job.tool), job.route(self.name)).endpoint(job)
        urls = await input_urls(job, self.inputs)
        sizes = request_sizes(job, endpoint.per_request)
        queued = await asyncio.gather(
            *(self._queue(endpoint.id, endpoint.build(job, urls, n)) for n in sizes),
            return_exceptions=True,
        )
        requests = [q for q in queued if isinstance(q, dict)]
        errors = [q for q in queued if isinstance(q, BaseException)]
        if errors:
            with contextlib.suppress(ProviderError):
                await self.cancel(job, {"requests": requests})
            raise errors[0]
        return Running({"requests": requests}, poll_after=POLL_AFTER)

    async def _poll_tool(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        requests = _requests(upstream)
        done = await asyncio.gather(*(self._completed(r) for r in requests))
        if not all(done):
            return Running(upstream, poll_after=POLL_AFTER)
        results = await asyncio.gather(*(self._result(r) for r in requests))
        files = [
            (r["endpoint"], url)
            for r, result in zip(requests, results, strict=True)
            for url in fal_tools.output_urls(r["endpoint"], result)
        ]
        artifacts = await self._tool_artifacts(job, files)
        usage = {
            "upstream_ids": [r["request_id"] for r in requests],
            "route": requests[0]["endpoint"],
        }
        return Finished(artifacts, usage=usage)

    async def _tool_artifacts(self, job: Job, files: list[tuple[str, str]]) -> list[Artifact]:
        """The outputs from (endpoint, URL) pairs; one file repeated for a tool that makes the
        same output each time."""
        same = job.tool in SAME_EACH_TIME
        wanted = 1 if same else job.num_outputs
        if len(files) < wanted:
            raise TerminalError(
                f"fal returned {len(files)} of {wanted} output(s) for this {job.tool} "
                "(its safety checker filtered the rest)"
            )

        async def one(endpoint: str, url: str) -> Artifact:
            made_by = fal_tools.ENDPOINTS[endpoint].made_by
            return await tool_artifact(self.name, job, await self.upstream.download(url), made_by)

        made = await asyncio.gather(*(one(e, u) for e, u in files[:wanted]))
        return made * job.num_outputs if same else made

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


def _requests(upstream: dict[str, Any]) -> list[dict[str, Any]]:
    """The requests of a handle: ``{"requests": [...]}``, or one ``{"endpoint", "request_id"}``."""
    if "requests" in upstream:
        return list(upstream["requests"])
    return [upstream]


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
