"""``comfyui``: an operator's own ComfyUI server running the workflows the catalog names.

A model's or tool's route is a workflow file in ComfyUI's API format (``{node_id: {"class_type",
"inputs"}}``, what "Export (API)" writes), set per catalog entry: ``upstream = {comfyui =
"workflows/sdxl.json"}``, relative to the catalog file. ``examples/comfyui/`` has working ones.
Whatever the workflow makes is what the model or tool makes, so this provider serves every Egg
model and every tool, but only where the catalog gives it a workflow (``route_problem``).

Placeholders: an input value that is exactly one of these strings is replaced before the
workflow is queued (a placeholder inside a longer string is an error):

    "{{prompt}}"           the prompt, or the text to speak (with the negative prompt folded in
                           as "Avoid: ..." when the workflow has no {{negative_prompt}})
    "{{negative_prompt}}"  the negative prompt, or ""
    "{{seed}}"             a random integer, new for each queued prompt (recorded in the usage)
    "{{width}}" "{{height}}"  integers: an Egg model's aspect ratio and resolution (the sizes of
                           ``render.image_size``, or ``render.video_size`` for video models), or a
                           tool's ``aspect`` option at about one megapixel, multiples of 64
    "{{image}}"            the name of the uploaded first input image (a LoadImage ``image``);
                           for generate-avatar, the presenter's picture (we draw it)
    "{{image_2}}" ...      the next ones ("{{image_1}}" is the same as "{{image}}")
    "{{video}}" "{{audio}}"   the name of the uploaded input video / audio file
    "{{num_outputs}}"      integer: how many outputs this one run makes (an EmptyLatentImage's
                           ``batch_size``); without it, each output is a run of its own
    "{{duration}}"         integer: the seconds each output is billed for

A workflow must take ``{{prompt}}`` when its model or tool works from a prompt, and the input
files its tool reads (``{{image}}``, ``{{video}}``, ``{{audio}}``); a job whose input files do not
match the workflow's (a reference image given to a text-to-image workflow) is one this provider
does not serve, so the runner skips to the next.

The exchange (``server.py`` of ComfyUI): input files go up with ``POST /upload/image`` (any file
type; subfolder ``hatchery``, named by file id, so a retry overwrites the same file); ``POST
/prompt`` queues the filled workflow and answers its ``prompt_id``; the handle is ``{"prompt_ids",
"seeds"}``; ``GET /history/{id}`` is ``{}`` until the prompt has run, then holds its status and
the files of its output nodes. Outputs are the ``output``-type files (SaveImage, SaveVideo,
SaveAudio, VideoHelperSuite's ``gifs``; not PreviewImage's temporary ones) of every output node,
in node-id order, fetched with ``GET /view``. Tools that make the same output each time run once
and repeat it.

Failures:

    POST /prompt 400 (validation)   about an input the request filled (a height past the
                                    node's maximum): TerminalError; about anything else (a
                                    checkpoint not installed, a node class missing): the
                                    operator's workflow, RetryableError, and another provider
                                    may make it
    status "error" in the history   RetryableError with the node's exception (out of GPU
                                    memory, a node crash), or "interrupted"
    neither queued nor in history   RetryableError: ComfyUI keeps both in memory, so it was
                                    restarted and the prompt is lost
    too few output files            RetryableError naming the count

Cancel deletes the prompts still queued (``POST /queue {"delete": [...]}``) and interrupts the
one running (``POST /interrupt {"prompt_id"}``); it asks ``GET /queue`` first, since ComfyUI
builds older than the scoped interrupt ignore the id and would stop whatever runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hatchery.domain.tools import SAME_EACH_TIME, InputFile
from hatchery.providers import render
from hatchery.providers.base import (
    IMAGE_SIZES,
    Artifact,
    Finished,
    Job,
    ProviderError,
    RetryableError,
    Running,
    TerminalError,
)
from hatchery.providers.inputs import InputFiles
from hatchery.providers.media import (
    Fetch,
    image_prompt,
    inline_reference,
    job_artifact,
    tool_artifact,
)
from hatchery.providers.tool_inputs import aspect_size, presenter_png, tool_aspect
from hatchery.providers.upstream import Upstream
from hatchery.storage import CONTENT_TYPES

POLL_AFTER = 2.0
SUBFOLDER = "hatchery"  # where our uploads go in ComfyUI's input folder
SEED_LIMIT = 2**32
PLACEHOLDER = re.compile(r"\{\{([a-z0-9_]+)\}\}")
NAMED = frozenset(
    {
        "prompt",
        "negative_prompt",
        "seed",
        "width",
        "height",
        "image",
        "video",
        "audio",
        "num_outputs",
        "duration",
    }
)
IMAGE_SLOT = re.compile(r"image_([1-9][0-9]?)")
SEED = "seed"  # the one placeholder our server picks: never the request's fault
PROMPTLESS_TOOLS = frozenset(
    {
        "generate-avatar",
        "vectorize-image",
        "remove-image-background",
        "remove-video-background",
        "upscale-image",
        "upscale-video",
    }
)
TOOL_READS = {  # the input file placeholders each tool's workflow must take
    "vectorize-image": ("image",),
    "remove-image-background": ("image",),
    "upscale-image": ("image",),
    "remove-video-background": ("video",),
    "upscale-video": ("video",),
    "generate-avatar": ("audio", "image"),  # the image: the presenter's picture
}
EXTENSIONS = {content_type: ext for ext, content_type in CONTENT_TYPES.items()}
MISSING_ROUTE = 'comfyui needs a workflow file: upstream = {comfyui = "workflows/x.json"}'


# -- workflows ---------------------------------------------------------------------------------


class WorkflowError(ValueError):
    """A workflow file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Workflow:
    """A loaded API-format workflow and the placeholders it takes."""

    path: str
    nodes: dict[str, Any]
    placeholders: frozenset[str]

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def image_slots(self) -> int:
        """How many input images it takes: ``{{image}}`` is the first, ``{{image_N}}`` the Nth."""
        slots = [int(m[1]) for p in self.placeholders if (m := IMAGE_SLOT.fullmatch(p))]
        return max([*slots, 1 if "image" in self.placeholders else 0])

    def filled(self, values: dict[str, Any]) -> dict[str, Any]:
        """The nodes with every placeholder replaced by its value."""
        return {
            node_id: {**node, "inputs": _fill(node["inputs"], values)}
            for node_id, node in self.nodes.items()
        }

    def placeholder_at(self, node_id: str, input_name: str) -> str | None:
        """Which placeholder a node's input holds, if any."""
        node = self.nodes.get(node_id) or {}
        value = (node.get("inputs") or {}).get(input_name)
        match = PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
        return match[1] if match else None


def load_workflow(path: str) -> Workflow:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkflowError(f"cannot read the workflow {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"the workflow {path} is not JSON: {exc}") from None
    _check_nodes(path, data)
    found = frozenset(_placeholders(path, data))
    unknown = sorted(p for p in found if p not in NAMED and not IMAGE_SLOT.fullmatch(p))
    if unknown:
        names = ", ".join("{{" + p + "}}" for p in unknown)
        raise WorkflowError(f"the workflow {path} has unknown placeholders: {names}")
    return Workflow(path, data, found)


def _check_nodes(path: str, data: Any) -> None:
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        raise WorkflowError(
            f"the workflow {path} is in ComfyUI's UI format; save it with Export (API)"
        )
    if not isinstance(data, dict) or not data:
        raise WorkflowError(f"the workflow {path} is not a JSON object of nodes")
    for node_id, node in data.items():
        if not (
            isinstance(node, dict)
            and isinstance(node.get("class_type"), str)
            and isinstance(node.get("inputs"), dict)
        ):
            raise WorkflowError(
                f"the workflow {path} is not in ComfyUI's API format: node {node_id} needs a "
                "class_type and inputs"
            )


def _placeholders(path: str, nodes: dict[str, Any]) -> Iterator[str]:
    for node_id, node in nodes.items():
        for text in _strings(node["inputs"]):
            match = PLACEHOLDER.fullmatch(text)
            if match:
                yield match[1]
            elif "{{" in text:
                raise WorkflowError(
                    f"the workflow {path}: node {node_id} has a placeholder inside a longer "
                    f"string ({text[:60]!r}); a placeholder must be the whole value"
                )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        match = PLACEHOLDER.fullmatch(value)
        return values[match[1]] if match else value
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value


def frame_size(job: Job) -> tuple[int, int]:
    """The ``{{width}}`` and ``{{height}}`` of a job."""
    if job.tool is not None:
        return aspect_size(*tool_aspect(job))
    if job.kind == "video":
        return render.video_size(job.aspect_ratio, job.resolution)
    return render.image_size(job.aspect_ratio, job.resolution)


# -- the provider ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An input file as it goes up to ComfyUI."""

    placeholder: str
    filename: str
    data: bytes
    content_type: str


class ComfyUIProvider:
    name = "comfyui"

    def __init__(self, upstream: Upstream, inputs: InputFiles, fetch: Fetch | None = None) -> None:
        """``fetch`` reads an Egg task's ``image_urls`` (through the outbound URL guard); without
        it, such tasks are not served here."""
        self.upstream = upstream
        self.inputs = inputs
        self._fetch = fetch
        self._workflows: dict[str, Workflow] = {}
        self._client_id = uuid.uuid4().hex  # ComfyUI's name for who queued a prompt

    def serves(self, model: str) -> bool:
        return True  # whatever its workflow makes; route_problem insists on one

    def route_problem(self, model: str, route: str | None) -> str | None:
        if route is None:
            return MISSING_ROUTE
        if not route.endswith(".json"):
            return f"comfyui runs workflow files (a .json file), not {route!r}"
        try:
            workflow = self._workflow(route)
        except WorkflowError as exc:
            return str(exc)
        needs = _needed(model)
        missing = sorted(p for p in needs if p not in workflow.placeholders)
        if missing:
            names = " and ".join("{{" + p + "}}" for p in missing)
            return f"the workflow {route} must take {names} for {model}"
        return None

    def unsupported(self, job: Job) -> str | None:
        route = job.route(self.name)
        if route is None:
            return MISSING_ROUTE
        try:
            workflow = self._workflow(route)
        except WorkflowError as exc:
            return str(exc)
        if job.image_urls and self._fetch is None:
            return "it cannot fetch image_urls here"
        return _inputs_problem(job, workflow)

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset(IMAGE_SIZES)  # the workflow is given {{width}} and {{height}}

    async def submit(self, job: Job) -> Finished | Running:
        workflow = self._job_workflow(job)
        uploads = await self._uploads(job, workflow)
        names = {u.placeholder: await self._upload(u) for u in uploads}
        if "image" in names:
            names["image_1"] = names["image"]  # the same first image, by either name
        runs, batch = _runs(job, workflow)
        seeds = [secrets.randbelow(SEED_LIMIT) for _ in range(runs)]
        base = {**_values(job, workflow, batch), **names}
        prompt_ids: list[str] = []
        try:
            for seed in seeds:
                prompt_ids.append(await self._queue(workflow, {**base, SEED: seed}))
        except ProviderError:
            await self.cancel(job, {"prompt_ids": prompt_ids})
            raise
        return Running({"prompt_ids": prompt_ids, "seeds": seeds}, poll_after=POLL_AFTER)

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        ids: list[str] = upstream["prompt_ids"]
        entries = await asyncio.gather(*(self._history(i) for i in ids))
        for prompt_id, entry in zip(ids, entries, strict=True):
            if entry is not None:
                _raise_if_failed(prompt_id, entry)
        waiting = [i for i, entry in zip(ids, entries, strict=True) if entry is None]
        if waiting:
            await self._check_alive(waiting)
            return Running(upstream, poll_after=POLL_AFTER)
        done = [entry for entry in entries if entry is not None]
        files = [f for entry in done for f in _output_files(entry)]
        artifacts = await self._artifacts(job, files)
        return Finished(artifacts, usage=_usage(job, upstream, done, self.name))

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        ids: list[str] = list(upstream.get("prompt_ids") or [])
        if not ids:
            return
        with contextlib.suppress(ProviderError):
            await self.upstream.exchange("POST", "queue", {"delete": ids})
        with contextlib.suppress(ProviderError):
            running = _queued(await self.upstream.call("GET", "queue"), "queue_running")
            for prompt_id in ids:
                if prompt_id in running:
                    await self.upstream.exchange("POST", "interrupt", {"prompt_id": prompt_id})

    # -- submit ------------------------------------------------------------------------------

    def _workflow(self, route: str) -> Workflow:
        if route not in self._workflows:
            self._workflows[route] = load_workflow(route)
        return self._workflows[route]

    def _job_workflow(self, job: Job) -> Workflow:
        route = job.route(self.name)
        if route is None:
            raise RetryableError(MISSING_ROUTE)
        try:
            return self._workflow(route)
        except WorkflowError as exc:
            raise RetryableError(f"comfyui: {exc}") from None

    async def _uploads(self, job: Job, workflow: Workflow) -> list[Upload]:
        """The input files the workflow takes, with the placeholder each fills."""
        if job.tool is None:
            return [await self._reference(job, i, url) for i, url in enumerate(job.image_urls)]
        uploads = []
        for role in ("image", "video", "audio"):
            for index, stored in enumerate(job.input(role)):
                placeholder = role if index == 0 else f"{role}_{index + 1}"
                data = await self.inputs.read(stored)
                uploads.append(Upload(placeholder, _filename(stored), data, stored.content_type))
        if job.tool == "generate-avatar":  # the presenter we draw, as the workflow's image
            picture = await asyncio.to_thread(presenter_png, job)
            name = f"{job.options.get('presenter_id')}.png"
            uploads.append(Upload("image", name, picture, "image/png"))
        return uploads

    async def _reference(self, job: Job, index: int, url: str) -> Upload:
        assert self._fetch is not None
        mime, data = await inline_reference(self._fetch, index, url)
        placeholder = "image" if index == 0 else f"image_{index + 1}"
        name = f"{job.task_id}-{index + 1}.{EXTENSIONS.get(mime, 'png')}"
        return Upload(placeholder, name, base64.b64decode(data), mime)

    async def _upload(self, upload: Upload) -> str:
        """Sends one input file; the name a loader node reads it by (``hatchery/<name>``)."""
        response = await self.upstream.exchange(
            "POST",
            "upload/image",
            files=[("image", (upload.filename, upload.data, upload.content_type))],
            data={"type": "input", "subfolder": SUBFOLDER, "overwrite": "true"},
        )
        answer = self.upstream.json_of("POST upload/image", response)
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise RetryableError("comfyui: POST upload/image answered without a file name")
        subfolder = answer.get("subfolder") or ""
        return f"{subfolder}/{name}" if subfolder else name

    async def _queue(self, workflow: Workflow, values: dict[str, Any]) -> str:
        body = {"prompt": workflow.filled(values), "client_id": self._client_id}
        response = await self.upstream.exchange("POST", "prompt", body, keep={400})
        if response.status_code == 400:  # its node errors say whose fault it is
            raise _refusal(workflow, response)
        answer = self.upstream.json_of("POST prompt", response)
        prompt_id = answer.get("prompt_id") if isinstance(answer, dict) else None
        if not isinstance(prompt_id, str) or not prompt_id:
            raise RetryableError("comfyui: POST prompt answered without a prompt_id")
        return prompt_id

    # -- poll --------------------------------------------------------------------------------

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while it is queued or running."""
        answer = await self.upstream.call("GET", f"history/{prompt_id}")
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    async def _check_alive(self, waiting: list[str]) -> None:
        """Raises when a prompt not in the history is not queued either (ComfyUI restarted):
        the history is asked again, for one that finished between the two questions."""
        queue = await self.upstream.call("GET", "queue")
        queued = _queued(queue, "queue_running") | _queued(queue, "queue_pending")
        for prompt_id in waiting:
            if prompt_id not in queued and await self._history(prompt_id) is None:
                raise RetryableError(
                    f"comfyui: prompt {prompt_id} is neither queued nor in the history "
                    "(ComfyUI was restarted?)"
                )

    async def _artifacts(self, job: Job, files: list[dict[str, str]]) -> list[Artifact]:
        wanted = 1 if job.tool in SAME_EACH_TIME else job.num_outputs
        if len(files) < wanted:
            raise RetryableError(
                f"comfyui: the workflow {Path(job.route(self.name) or '').name} made "
                f"{len(files)} of {wanted} output file(s)"
            )
        made = [await self._artifact(job, await self._view(f)) for f in files[:wanted]]
        return made * job.num_outputs if job.tool in SAME_EACH_TIME else made

    async def _view(self, file: dict[str, str]) -> bytes:
        response = await self.upstream.exchange("GET", "view", params=file)
        return response.content

    async def _artifact(self, job: Job, data: bytes) -> Artifact:
        if job.tool is None:
            return job_artifact(self.name, job, data)
        made_by = f"comfyui {Path(job.route(self.name) or '').name}"
        return await tool_artifact(self.name, job, data, made_by)


# -- what goes up ------------------------------------------------------------------------------


def _needed(model: str) -> set[str]:
    """The placeholders a workflow for ``model`` must take."""
    needs = set() if model in PROMPTLESS_TOOLS else {"prompt"}
    needs.update(TOOL_READS.get(model, ()))
    return needs


def _inputs_problem(job: Job, workflow: Workflow) -> str | None:
    """Why the job's input files do not fit the workflow (one file per input placeholder)."""
    images = len(job.image_urls) if job.tool is None else len(job.input("image"))
    images += job.tool == "generate-avatar"  # the presenter's picture
    if images != workflow.image_slots:
        if workflow.image_slots == 0:
            return f"its workflow {workflow.name} takes no input images"
        return f"its workflow {workflow.name} takes {workflow.image_slots} input image(s)"
    for role in ("video", "audio"):
        given, wanted = bool(job.input(role)), role in workflow.placeholders
        if given != wanted:
            verb = "needs" if wanted else "takes no"
            return f"its workflow {workflow.name} {verb} an input {role}"
    return None


def _filename(stored: InputFile) -> str:
    return f"{stored.file_id}.{EXTENSIONS.get(stored.content_type, 'bin')}"


def _runs(job: Job, workflow: Workflow) -> tuple[int, int]:
    """How many prompts to queue, and the ``{{num_outputs}}`` of each."""
    if job.tool in SAME_EACH_TIME:
        return 1, 1
    if "num_outputs" in workflow.placeholders:
        return 1, job.num_outputs
    return job.num_outputs, 1


def _values(job: Job, workflow: Workflow, batch: int) -> dict[str, Any]:
    width, height = frame_size(job)
    separate = "negative_prompt" in workflow.placeholders
    return {
        "prompt": job.prompt if separate or job.tool else image_prompt(job),
        "negative_prompt": job.negative_prompt or "",
        "width": width,
        "height": height,
        "num_outputs": batch,
        "duration": job.duration,
    }


def _refusal(workflow: Workflow, response: httpx.Response) -> ProviderError:
    """A 400 from ``POST /prompt``: terminal when a node refused a value the request filled in,
    else the operator's workflow does not validate on this server."""
    body = _json(response)
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    details = list(_node_errors(body.get("node_errors")))
    for node_id, input_name, text in details:
        placeholder = workflow.placeholder_at(node_id, input_name)
        if placeholder is not None and placeholder != SEED:
            return TerminalError(f"comfyui refused the request's {placeholder}: {text}")
    said = "; ".join(f"node {n} {i}: {t}" for n, i, t in details[:5]) or str(message)
    return RetryableError(f"comfyui: the workflow {workflow.name} does not validate: {said}")


def _node_errors(node_errors: Any) -> Iterator[tuple[str, str, str]]:
    """(node id, input name, message) of each validation error ComfyUI lists."""
    if not isinstance(node_errors, dict):
        return
    for node_id, block in node_errors.items():
        for error in (block or {}).get("errors") or []:
            extra = error.get("extra_info") or {}
            input_name = extra.get("input_name") or error.get("details") or ""
            text = f"{error.get('message', '')} ({error.get('details', '')})"
            yield str(node_id), str(input_name), text


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:300]}
    return body if isinstance(body, dict) else {"error": str(body)[:300]}


# -- what comes back ---------------------------------------------------------------------------


def _queued(queue: Any, which: str) -> set[str]:
    """The prompt ids of ``GET /queue``'s running or pending items (``[number, id, ...]``)."""
    items = queue.get(which) if isinstance(queue, dict) else None
    return {str(i[1]) for i in items or [] if isinstance(i, list) and len(i) > 1}


def _raise_if_failed(prompt_id: str, entry: dict[str, Any]) -> None:
    status = entry.get("status") or {}
    if status.get("status_str", "success") == "success" and status.get("completed", True):
        return
    for event, data in _messages(status):
        if event == "execution_error":
            raise RetryableError(
                f"comfyui: prompt {prompt_id} failed in node {data.get('node_id')} "
                f"({data.get('node_type')}): {data.get('exception_type')}: "
                f"{str(data.get('exception_message', '')).strip()[:300]}"
            )
        if event == "execution_interrupted":
            raise RetryableError(f"comfyui: prompt {prompt_id} was interrupted")
    raise RetryableError(f"comfyui: prompt {prompt_id} ended {status.get('status_str')!r}")


def _messages(status: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``[event, data]`` pairs of a history entry's status."""
    messages = status.get("messages") if isinstance(status, dict) else None
    for message in messages or []:
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict):
            yield str(message[0]), message[1]


def _output_files(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The saved files of every output node, in node-id order (numeric ids as numbers)."""
    outputs = entry.get("outputs") or {}
    files = []
    for node_id in sorted(outputs, key=_node_order):
        for value in (outputs[node_id] or {}).values():
            files.extend(_saved(value))
    return files


def _node_order(node_id: str) -> tuple[int, int, str]:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _saved(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return []
    return [
        {
            "filename": str(item["filename"]),
            "subfolder": str(item.get("subfolder") or ""),
            "type": "output",
        }
        for item in value
        if isinstance(item, dict) and item.get("filename") and item.get("type") == "output"
    ]


def _usage(
    job: Job, upstream: dict[str, Any], entries: list[dict[str, Any]], name: str
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "upstream_ids": list(upstream["prompt_ids"]),
        "route": Path(job.route(name) or "").name,
        "seeds": list(upstream.get("seeds") or []),
    }
    seconds = [s for s in map(_execution_seconds, entries) if s is not None]
    if seconds:
        usage["execution_seconds"] = round(sum(seconds), 3)
    return usage


def _execution_seconds(entry: dict[str, Any]) -> float | None:
    """From the ``execution_start`` to the ``execution_success`` message (ms timestamps)."""
    stamps = {event: data.get("timestamp") for event, data in _messages(entry.get("status"))}
    start, end = stamps.get("execution_start"), stamps.get("execution_success")
    if isinstance(start, int | float) and isinstance(end, int | float):
        return max(0.0, (end - start) / 1000)
    return None
