"""``veo``: Google Veo 3.1 on the Gemini API, a long-running upstream.

``predictLongRunning`` answers with an operation name at once; that name is the handle stored on
the task. Polling ``GET /{name}`` says ``done:false`` until the video is made; the done operation
carries either ``error`` or ``generatedSamples`` whose URIs are downloaded with the API key
(following the redirect to Google's file store, without the key). The API has no cancel, and a
task reclaimed after a crash polls the same operation again.
"""

from __future__ import annotations

from typing import Any

from hatchery.providers.base import (
    Finished,
    Job,
    RetryableError,
    Running,
    TerminalError,
    fixed_route,
)
from hatchery.providers.media import (
    Fetch,
    inline_reference,
    job_artifact,
    veo_duration_problem,
    video_resolution,
)
from hatchery.providers.upstream import Upstream

MODELS = {"veo3.1": "veo-3.1-generate-preview"}
MAX_OUTPUTS = 4
# google.rpc.Code values (and HTTP statuses, which some operations carry) that mean the input
# itself was refused; every other error is worth another try.
TERMINAL_CODES = frozenset({3, 9, 11, 400, 422})
POLL_AFTER = 5.0


class VeoProvider:
    name = "veo"

    def __init__(self, upstream: Upstream, fetch: Fetch) -> None:
        self.upstream = upstream
        self._fetch = fetch

    def serves(self, model: str) -> bool:
        return model in MODELS

    def route_problem(self, model: str, route: str | None) -> str | None:
        return fixed_route(self.name, route)

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset()  # it makes videos only

    def unsupported(self, job: Job) -> str | None:
        if problem := veo_duration_problem(job):
            return problem
        if job.resolution != "1k" and job.duration != 8:
            return f"a {video_resolution(job.resolution)} video must be 8 seconds long"
        if len(job.image_urls) > 1:
            return "it takes at most one image (the first frame)"
        if job.num_outputs > MAX_OUTPUTS:
            return f"it makes at most {MAX_OUTPUTS} videos per request"
        return None

    async def submit(self, job: Job) -> Finished | Running:
        instance: dict[str, Any] = {"prompt": job.prompt}
        if job.image_urls:
            mime, data = await inline_reference(self._fetch, 0, job.image_urls[0])
            instance["image"] = {"bytesBase64Encoded": data, "mimeType": mime}
        parameters: dict[str, Any] = {
            "aspectRatio": job.aspect_ratio,
            "resolution": video_resolution(job.resolution),
            "durationSeconds": job.duration,
            "sampleCount": job.num_outputs,
        }
        if job.negative_prompt:
            parameters["negativePrompt"] = job.negative_prompt
        body = {"instances": [instance], "parameters": parameters}
        answer = await self.upstream.call(
            "POST", f"models/{MODELS[job.model]}:predictLongRunning", body
        )
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name.strip("/"):
            raise RetryableError("veo: predictLongRunning answered without an operation name")
        return Running({"operation": name}, poll_after=POLL_AFTER)

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        name = upstream["operation"]
        operation = await self.upstream.call("GET", name)
        if not isinstance(operation, dict):
            raise RetryableError("veo: the operation is not a JSON object")
        if not operation.get("done"):
            return Running(upstream, poll_after=POLL_AFTER)
        if operation.get("error"):
            raise _operation_error(operation["error"])
        return await self._finished(job, name, operation.get("response") or {})

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        return None  # the Gemini API has no way to cancel a Veo operation

    async def _finished(self, job: Job, name: str, response: dict[str, Any]) -> Finished:
        result = response.get("generateVideoResponse") or {}
        samples = result.get("generatedSamples") or []
        uris = [str((s.get("video") or {}).get("uri") or "") for s in samples]
        filtered = result.get("raiMediaFilteredCount") or 0
        if filtered and len(uris) < job.num_outputs:
            reasons = "; ".join(str(r) for r in result.get("raiMediaFilteredReasons") or [])
            said = f": {reasons}" if reasons else ""
            raise TerminalError(f"veo's safety filters blocked {filtered} video(s){said}")
        if len(uris) < job.num_outputs or not all(uris):
            raise RetryableError(
                f"veo: the operation finished with {len(uris)} of {job.num_outputs} video(s)"
            )
        artifacts = [
            job_artifact(self.name, job, await self.upstream.download(uri)) for uri in uris
        ]
        return Finished(artifacts, usage={"upstream_ids": [name], "seconds": job.duration})


def _operation_error(error: Any) -> RetryableError | TerminalError:
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else str(error)
    text = f"veo: the operation failed (code {code}): {message}"
    if code in TERMINAL_CODES:
        return TerminalError(text)
    return RetryableError(text)
