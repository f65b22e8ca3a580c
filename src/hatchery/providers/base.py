"""The provider interface: submit, poll, cancel, with a resumable upstream handle.

A provider's ``submit`` either finishes at once (a synchronous upstream, or the ``local``
renderer) or returns :class:`Running` with a JSON-able handle that the worker stores on the task
before waiting; a task reclaimed after a crash resumes with ``poll`` on that handle and never
submits again.

    ProviderError            the provider could not produce the outputs
    ├── RetryableError       worth trying again or on the next provider (connection errors,
    │   │                    timeouts, 429, 5xx, the upstream "unavailable"); may carry the
    │   │                    upstream's Retry-After
    │   └── UpstreamUnreachable   no usable answer at all (timeout, connection, 429, 5xx): an
    │                        upstream job already accepted may be fine, so a poll that meets
    │                        this polls again instead of giving the job up
    └── TerminalError        the request itself cannot succeed (a safety or moderation refusal,
                             invalid input): the task fails with the upstream's reason

What a vendor runs for a model or a tool is its *route*: a vendor model id (``fal-ai/birefnet/v2``,
``nightmareai/real-esrgan:<version>``, ``eleven_multilingual_v2``) or a ComfyUI workflow file,
set per provider in the catalog (``upstream = {fal = "..."}``) or else the adapter's default. A
provider checks a route when the server starts (``route_problem``) and finds it on the job
(``Job.route``).

A provider also says, before anything is queued, which models it serves (``serves``) and why it
cannot serve a request's values (``unsupported``), so that a request no provider of its model can
serve is refused at submit with ``VALIDATION_ERROR`` instead of failing later. An image size is
never a reason: a provider says which sizes it makes of a model (``image_sizes``), and is asked
for the nearest of them when it cannot make the one requested (``providers.registry.fitted``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from hatchery.domain.tools import TOOLS, InputFile, ToolParams

IMAGE_SIZES = ("1k", "2k", "4k")  # the image resolutions of the API, smallest first


class ProviderError(Exception):
    """``status`` and ``body`` are the upstream's HTTP error answer (its decoded JSON), when
    there was one: an adapter reads its vendor's own error codes there."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.body = body


class RetryableError(ProviderError):
    pass


class UpstreamUnreachable(RetryableError):
    pass


class TerminalError(ProviderError):
    pass


@dataclass(frozen=True)
class Job:
    """What a provider is asked to make: the task's validated parameters. A tool execution's job
    names its ``tool``, the stored files it reads (``inputs``, by role) and the tool's
    ``options``; its ``kind`` is what it makes (image, video or audio)."""

    task_id: str
    model: str
    kind: str  # "image", "video" or "audio"
    prompt: str
    negative_prompt: str | None
    num_outputs: int
    duration: int
    aspect_ratio: str
    resolution: str
    image_urls: tuple[str, ...] = ()
    tool: str | None = None
    inputs: tuple[tuple[str, InputFile], ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    routes: Mapping[str, str] = field(default_factory=dict)  # the catalog's, by provider

    def route(self, provider: str) -> str | None:
        """What the catalog has ``provider`` run for this job (None: the adapter's default)."""
        return self.routes.get(provider)

    @classmethod
    def from_params(
        cls,
        task_id: str,
        model: str,
        kind: str,
        params: dict[str, Any],
        routes: Mapping[str, str] | None = None,
    ) -> Job:
        if "tool" in params:
            return replace(cls.for_tool(task_id, ToolParams.of(params)), routes=routes or {})
        return cls(
            task_id=task_id,
            model=model,
            kind=kind,
            prompt=params["prompt"],
            negative_prompt=params.get("negative_prompt"),
            num_outputs=params["num_outputs"],
            duration=params["duration"],
            aspect_ratio=params["aspect_ratio"],
            resolution=params["resolution"],
            image_urls=tuple(params.get("image_urls") or ()),
            routes=routes or {},
        )

    @classmethod
    def for_tool(cls, task_id: str, params: ToolParams) -> Job:
        return cls(
            task_id=task_id,
            model=params.tool,
            kind=TOOLS[params.tool].output.value,
            prompt=params.prompt,
            negative_prompt=None,
            num_outputs=params.num_outputs,
            duration=params.duration,
            aspect_ratio="",
            resolution="",
            tool=params.tool,
            inputs=params.inputs,
            options=dict(params.options),
        )

    def input(self, role: str) -> list[InputFile]:
        """The stored files it reads in ``role`` (``image``, ``video``, ``audio``), in order."""
        return [f for r, f in self.inputs if r == role]


@dataclass(frozen=True)
class Artifact:
    data: bytes
    extension: str  # "png", "mp4", "svg", "webm", "mp3"
    width: int | None
    height: int | None
    seconds: float | None = None
    description: str | None = None  # what made it, shown on its file


@dataclass(frozen=True)
class Finished:
    artifacts: list[Artifact]
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Running:
    upstream: dict[str, Any]
    poll_after: float = 2.0


def fixed_route(provider: str, route: str | None) -> str | None:
    """The ``route_problem`` of a provider that always runs its own models."""
    if route is None:
        return None
    return f"{provider} runs its own models and takes no upstream setting (got {route!r})"


class Provider(Protocol):
    name: str

    def serves(self, model: str) -> bool:
        """Whether this provider knows how to make ``model`` (checked against the catalog)."""
        ...

    def route_problem(self, model: str, route: str | None) -> str | None:
        """Why this provider cannot run ``model`` the way the catalog routes it (an unknown
        vendor model, a workflow file that does not load), or None; checked at start."""
        ...

    def unsupported(self, job: Job) -> str | None:
        """Why this provider cannot serve the job's values (e.g. a duration), or None."""
        ...

    def image_sizes(self, model: str) -> frozenset[str]:
        """The image resolutions (of ``IMAGE_SIZES``) this provider makes of ``model``."""
        ...

    async def submit(self, job: Job) -> Finished | Running: ...

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running: ...

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None: ...
