"""Fake self-hosted inference servers on 127.0.0.1, strict about the protocol they speak: each
checks what it receives and records anything wrong in ``violations`` (a test asserts there are
none) besides answering 400.

    FakeComfyUI        ComfyUI's HTTP API (``server.py``): /upload/image, /prompt (validated
                       like ComfyUI validates a prompt), /history/{id}, /queue, /view, /interrupt
    FakeOpenAIImages   the OpenAI images API: /v1/images/generations (JSON) and
                       /v1/images/edits (multipart)

``plan(kind, *modes)`` scripts what the next requests of a kind get, as in
``tests/fake_upstreams.py`` (common modes "429", "500", "503", "hang", "drop"); vendor modes are
listed on each class.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import itertools
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from PIL import Image

from tests.fake_upstreams import (
    Answer,
    FakeFiles,
    FakeServer,
    Job,
    Request,
    first_problem,
    json_answer,
    mp4_bytes,
)

COMFY_TOKEN = "comfy-proxy-token"
OPENAI_KEY = "sk-test-openai"
PLACEHOLDER = re.compile(r"\{\{[a-z0-9_]+\}\}")


@dataclass(frozen=True)
class Part:
    """One field of a multipart form."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


def form(request: Request) -> list[Part] | None:
    """The fields of a ``multipart/form-data`` body, or None when it is not one."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    if not message.is_multipart():
        return None
    return [
        Part(
            str(part.get_param("name", header="content-disposition") or ""),
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True) or b"",
        )
        for part in message.iter_parts()
    ]


def png(size: tuple[int, int], color: tuple[int, ...] = (30, 120, 200), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG")
    return out.getvalue()


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.size
    except Exception:
        return None


# -- ComfyUI ------------------------------------------------------------------------------------

INT, FLOAT, STRING, LINK, FILE = "INT", "FLOAT", "STRING", "LINK", "FILE"
MAX_RESOLUTION = 16384
# class_type -> input -> (kind, min, max) or a list of allowed values: ComfyUI's node schemas
# (nodes.py; RMBG from ComfyUI-RMBG), as far as the example workflows use them.
NODES: dict[str, dict[str, Any]] = {
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
    "EmptyLatentImage": {
        "width": (INT, 16, MAX_RESOLUTION),
        "height": (INT, 16, MAX_RESOLUTION),
        "batch_size": (INT, 1, 4096),
    },
    "CLIPTextEncode": {"text": (STRING,), "clip": (LINK,)},
    "KSampler": {
        "seed": (INT, 0, 2**64 - 1),
        "steps": (INT, 1, 10000),
        "cfg": (FLOAT, 0.0, 100.0),
        "sampler_name": ["euler", "dpmpp_2m", "dpmpp_2m_sde"],
        "scheduler": ["normal", "karras"],
        "denoise": (FLOAT, 0.0, 1.0),
        "model": (LINK,),
        "positive": (LINK,),
        "negative": (LINK,),
        "latent_image": (LINK,),
    },
    "VAEDecode": {"samples": (LINK,), "vae": (LINK,)},
    "VAEEncode": {"pixels": (LINK,), "vae": (LINK,)},
    "RepeatLatentBatch": {"samples": (LINK,), "amount": (INT, 1, 64)},
    "LoadImage": {"image": (FILE,)},
    "LoadVideo": {"file": (FILE,)},
    "LoadAudio": {"audio": (FILE,)},
    "RMBG": {
        "image": (LINK,),
        "model": ["RMBG-2.0", "INSPYRENET", "BEN", "BEN2"],
        "sensitivity": (FLOAT, 0.0, 1.0),
        "process_res": (INT, 256, 2048),
        "mask_blur": (INT, 0, 64),
        "mask_offset": (INT, -64, 64),
        "invert_output": ["BOOLEAN"],
        "refine_foreground": ["BOOLEAN"],
        "background": ["Alpha", "Color"],
        "background_color": (STRING,),
    },
    "SaveImage": {"filename_prefix": (STRING,), "images": (LINK,)},
    "PreviewImage": {"images": (LINK,)},
    "SaveVideo": {"filename_prefix": (STRING,), "video": (LINK,)},
}
OUTPUT_NODES = {"SaveImage": "output", "PreviewImage": "temp", "SaveVideo": "output"}
CHECKPOINTS = ["sd_xl_base_1.0.safetensors"]


class FakeComfyUI(FakeServer):
    """ComfyUI behind a proxy that wants ``Authorization: Bearer <token>``. Kinds and modes:

    ``prompt``   POST /prompt; the queued prompt's outcome: "ok", "invalid" (no checkpoint is
                 installed: 400 node_errors), "error" (an execution_error in its history),
                 "lost" (forgotten, as by a restart), "fewer" (one output file fewer),
                 "notimage" (its files are served as HTML)
    ``history``  GET /history/{id} (common modes only)

    A prompt stays queued for ``pending_polls`` history reads; the first unfinished one is the
    running one in ``GET /queue``.
    """

    def __init__(self, token: str | None = COMFY_TOKEN, pending_polls: int = 0) -> None:
        self.token = token
        self.pending_polls = pending_polls
        self.uploads: dict[str, bytes] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.deleted: list[str] = []
        self.interrupted: list[str] = []
        self.order: list[str] = []  # prompt ids as queued
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            for store in (self.uploads, self.files):
                store.clear()
            for seen in (self.deleted, self.interrupted, self.order):
                seen.clear()
        self.pending_polls = 0

    def error(self, status: int, code: str, message: str) -> Answer:
        return json_answer(status, {"error": {"type": code, "message": message}})

    def answer(self, request: Request) -> Answer:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return json_answer(401, {"error": "missing or wrong bearer token"})
        path = request.path.removeprefix("/api")  # ComfyUI serves each route under /api too
        if request.method == "GET" and path.startswith("/history/"):
            return self._history(path.removeprefix("/history/"))
        if request.method == "GET" and path == "/queue":
            return json_answer(200, self._queue())
        handlers = {
            ("POST", "/upload/image"): self._upload,
            ("POST", "/prompt"): self._prompt,
            ("POST", "/queue"): self._delete,
            ("POST", "/interrupt"): self._interrupt,
            ("GET", "/view"): self._view,
        }
        handler = handlers.get((request.method, path))
        if handler is None:
            return self.refuse(f"unexpected {request.method} {request.path}")
        return handler(request)

    # -- uploads -----------------------------------------------------------------------------

    def _upload(self, request: Request) -> Answer:
        parts = form(request)
        if parts is None:
            return self.refuse("/upload/image takes multipart/form-data")
        fields = {p.name: p for p in parts}
        image = fields.get("image")
        problem = first_problem(
            (image is None or not image.filename, "the file must be the 'image' field, named"),
            (fields.get("type") is None or fields["type"].text != "input", "type must be input"),
            (
                "overwrite" in fields and fields["overwrite"].text not in ("true", "1"),
                "overwrite is 'true' or '1'",
            ),
            (len(parts) != len(fields), "a field is repeated"),
        )
        if problem or image is None or image.filename is None:
            return self.refuse(problem or "no image")
        subfolder = fields["subfolder"].text if "subfolder" in fields else ""
        if ".." in subfolder or subfolder.startswith("/"):
            return self.refuse(f"subfolder {subfolder!r} leaves the input folder")
        name = f"{subfolder}/{image.filename}" if subfolder else image.filename
        with self._lock:
            self.uploads[name] = image.data
        return json_answer(200, {"name": image.filename, "subfolder": subfolder, "type": "input"})

    # -- prompts -----------------------------------------------------------------------------

    def _prompt(self, request: Request) -> Answer:
        mode = self.mode("prompt")
        common = self.common(mode)
        if common:
            return common
        try:
            body = request.json()
        except ValueError:
            return self.refuse("/prompt takes a JSON body")
        problem = self._check_body(body)
        if problem:
            return self.refuse(problem)
        prompt = body["prompt"]
        missing = [n for n, node in prompt.items() if node["class_type"] not in NODES]
        if missing:
            node = prompt[missing[0]]
            return json_answer(400, self._invalid(f"node {node['class_type']} does not exist"))
        node_errors = self._validate(prompt, installed=[] if mode == "invalid" else CHECKPOINTS)
        if node_errors:
            return json_answer(400, _failed_validation(node_errors))
        prompt_id = f"{self.new_id()}-prompt"
        self.jobs[prompt_id] = Job("image", self.pending_polls, mode, extra={"prompt": prompt})
        with self._lock:
            self.order.append(prompt_id)
        return json_answer(
            200, {"prompt_id": prompt_id, "number": len(self.order), "node_errors": {}}
        )

    def _check_body(self, body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), dict):
            return 'the body must be {"prompt": {node_id: node}, ...}'
        extra = set(body) - {"prompt", "client_id", "extra_data", "number", "front"}
        prompt = body["prompt"]
        unfilled = [s for node in prompt.values() for s in _strings(node) if PLACEHOLDER.search(s)]
        return first_problem(
            (bool(extra), f"unknown body fields {sorted(extra)}"),
            (not isinstance(body.get("client_id"), str), "client_id must be a string"),
            (
                not all(
                    isinstance(n, dict)
                    and isinstance(n.get("class_type"), str)
                    and isinstance(n.get("inputs"), dict)
                    for n in prompt.values()
                ),
                "each node needs class_type and inputs",
            ),
            (bool(unfilled), f"placeholders left unfilled: {unfilled[:3]}"),
        )

    def _invalid(self, message: str) -> dict[str, Any]:
        error = {
            "type": "invalid_prompt",
            "message": "Cannot execute because a node is missing the class_type property.",
            "details": message,
            "extra_info": {},
        }
        return {"error": error, "node_errors": {}}

    def _validate(self, prompt: dict[str, Any], installed: list[str]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        for node_id, node in prompt.items():
            found = [
                e
                for name, value in node["inputs"].items()
                if (e := self._check_input(prompt, node["class_type"], name, value, installed))
            ]
            unknown = set(node["inputs"]) - set(NODES[node["class_type"]])
            if unknown:
                self.violations.append(f"node {node_id} has unknown inputs {sorted(unknown)}")
            if found:
                errors[node_id] = {
                    "errors": found,
                    "dependent_outputs": [],
                    "class_type": node["class_type"],
                }
        return errors

    def _check_input(
        self, prompt: dict[str, Any], class_type: str, name: str, value: Any, installed: list[str]
    ) -> dict[str, Any] | None:
        schema = NODES[class_type].get(name)
        if schema == "checkpoints":
            schema = installed
        if isinstance(schema, list):
            allowed = [True, False] if schema == ["BOOLEAN"] else schema
            if value not in allowed:
                return _value_error(
                    "value_not_in_list", f"Value not in list: {name}: {value!r}", name, value
                )
            return None
        if schema is None:
            return None
        kind = schema[0]
        if kind == LINK:
            ok = isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt
            return None if ok else _value_error("bad_linked_input", "Bad linked input", name, value)
        if kind == FILE:
            if value not in self.uploads:
                return _value_error(
                    "custom_validation_failed", f"Invalid image file: {value}", name, value
                )
            return None
        return self._check_scalar(kind, schema, name, value)

    def _check_scalar(
        self, kind: str, schema: tuple[Any, ...], name: str, value: Any
    ) -> dict[str, Any] | None:
        types = {INT: (int,), FLOAT: (int, float), STRING: (str,)}[kind]
        if isinstance(value, bool) or not isinstance(value, types):
            self.violations.append(f"{name} should be {kind}, got {value!r}")
            return _value_error(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                name,
                value,
            )
        if kind != STRING and value < schema[1]:
            return _value_error(
                "value_smaller_than_min",
                f"Value {value} smaller than min of {schema[1]}",
                name,
                value,
            )
        if kind != STRING and value > schema[2]:
            return _value_error(
                "value_bigger_than_max",
                f"Value {value} bigger than max of {schema[2]}",
                name,
                value,
            )
        return None

    # -- history, queue, files ---------------------------------------------------------------

    def _history(self, prompt_id: str) -> Answer:
        common = self.common(self.mode("history"))
        if common:
            return common
        job = self.jobs.get(prompt_id)
        if job is None or job.outcome == "lost":
            return json_answer(200, {})
        if job.extra.get("interrupted"):
            return json_answer(200, {prompt_id: self._entry(prompt_id, job, interrupted=True)})
        if job.cancelled:  # deleted from the queue before it ran: gone
            return json_answer(200, {})
        if job.polls_left > 0:
            job.polls_left -= 1
            return json_answer(200, {})
        return json_answer(200, {prompt_id: self._entry(prompt_id, job)})

    def _queue(self) -> dict[str, Any]:
        waiting = [
            [number, prompt_id, self.jobs[prompt_id].extra["prompt"], {}, []]
            for number, prompt_id in enumerate(self.order)
            if self._waiting(prompt_id)
        ]
        return {"queue_running": waiting[:1], "queue_pending": waiting[1:]}

    def _waiting(self, prompt_id: str) -> bool:
        job = self.jobs[prompt_id]
        return job.polls_left > 0 and not job.cancelled and job.outcome != "lost"

    def _entry(self, prompt_id: str, job: Job, interrupted: bool = False) -> dict[str, Any]:
        started = int(time.time() * 1000)
        messages: list[list[Any]] = [
            ["execution_start", {"prompt_id": prompt_id, "timestamp": started}]
        ]
        status = {"status_str": "success", "completed": True, "messages": messages}
        outputs: dict[str, Any] = {}
        if interrupted or job.outcome == "error":
            status.update(status_str="error", completed=False)
            messages.append(_failure(prompt_id, interrupted, started))
        else:
            outputs = job.extra.setdefault("outputs", self._outputs(job))
            messages.append(
                ["execution_success", {"prompt_id": prompt_id, "timestamp": started + 4200}]
            )
        return {
            "prompt": [0, prompt_id, job.extra["prompt"], {}, []],
            "outputs": outputs,
            "status": status,
            "meta": {},
        }

    def _outputs(self, job: Job) -> dict[str, Any]:
        prompt = job.extra["prompt"]
        outputs = {}
        for node_id, node in prompt.items():
            folder = OUTPUT_NODES.get(node["class_type"])
            if folder is None:
                continue
            count = _batch(prompt) - (1 if job.outcome == "fewer" else 0)
            files = [self._save(job, prompt, node, folder) for _ in range(max(count, 0))]
            key = "images"
            outputs[node_id] = {
                key: files,
                **({"animated": [True]} if node["class_type"] == "SaveVideo" else {}),
            }
        return outputs

    def _save(
        self, job: Job, prompt: dict[str, Any], node: dict[str, Any], folder: str
    ) -> dict[str, str]:
        prefix = node["inputs"].get("filename_prefix", "ComfyUI_temp")
        video = node["class_type"] == "SaveVideo"
        name = f"{prefix}_{next(self._counter):05}_.{'mp4' if video else 'png'}"
        data = mp4_bytes() if video else self._picture(prompt)
        if job.outcome == "notimage":
            data = b"<html>502 Bad Gateway</html>"
        with self._lock:
            self.files[(name, "", folder)] = data
        return {"filename": name, "subfolder": "", "type": folder}

    def _picture(self, prompt: dict[str, Any]) -> bytes:
        """A PNG of the size the workflow makes: its latent's, or its loaded image's (with an
        alpha channel after RMBG)."""
        classes = {node["class_type"]: node["inputs"] for node in prompt.values()}
        if "EmptyLatentImage" in classes:
            latent = classes["EmptyLatentImage"]
            return png((latent["width"], latent["height"]))
        size = image_size(self.uploads[classes["LoadImage"]["image"]]) or (1, 1)
        if "RMBG" in classes:
            return png(size, (200, 40, 90, 0), "RGBA")
        return png(size, (90, 160, 40))

    def _delete(self, request: Request) -> Answer:
        body = request.json()
        if set(body) != {"delete"} or not isinstance(body["delete"], list):
            return self.refuse('POST /queue takes {"delete": [prompt_id, ...]}')
        for prompt_id in body["delete"]:
            self.deleted.append(prompt_id)
            job = self.jobs.get(prompt_id)
            if (
                job is not None
                and self._waiting(prompt_id)
                and self._queue()["queue_running"][0][1] != prompt_id
            ):
                job.cancelled = True  # a pending prompt leaves the queue; a running one stays
        return 200, {"Content-Length": "0"}, b""

    def _interrupt(self, request: Request) -> Answer:
        body = request.json() if request.body else {}
        if not isinstance(body.get("prompt_id"), str):
            self.violations.append("a bare /interrupt stops whatever runs, another task's too")
            return 200, {}, b""
        running = self._queue()["queue_running"]
        if running and running[0][1] == body["prompt_id"]:
            job = self.jobs[body["prompt_id"]]
            job.cancelled = job.extra["interrupted"] = True
        self.interrupted.append(body["prompt_id"])
        return 200, {}, b""

    def _view(self, request: Request) -> Answer:
        query = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        if set(query) - {"filename", "subfolder", "type"} or "filename" not in query:
            return self.refuse(f"/view takes filename, subfolder and type, got {sorted(query)}")
        key = (query["filename"], query.get("subfolder", ""), query.get("type", "output"))
        with self._lock:
            data = self.files.get(key)
        if data is None:
            return 404, {}, b""
        kind = "video/mp4" if key[0].endswith(".mp4") else "image/png"
        return 200, {"Content-Type": kind}, data

    def viewed(self) -> list[str]:
        return [parse_qs(r.query)["filename"][0] for r in self.seen("GET", "/view")]

    def prompts(self) -> list[dict[str, Any]]:
        return [r.json()["prompt"] for r in self.seen("POST", "/prompt")]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def _batch(prompt: dict[str, Any]) -> int:
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "EmptyLatentImage":
            return int(inputs["batch_size"])
        if node["class_type"] == "RepeatLatentBatch":
            return int(inputs["amount"])
    return 1


def _value_error(kind: str, message: str, name: str, value: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "details": name,
        "extra_info": {"input_name": name, "received_value": value},
    }


def _failed_validation(node_errors: dict[str, Any]) -> dict[str, Any]:
    details = "\n".join(
        f"{e['message']}: {e['details']}" for block in node_errors.values() for e in block["errors"]
    )
    error = {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": details,
        "extra_info": {},
    }
    return {"error": error, "node_errors": node_errors}


def _failure(prompt_id: str, interrupted: bool, started: int) -> list[Any]:
    if interrupted:
        return [
            "execution_interrupted",
            {
                "prompt_id": prompt_id,
                "node_id": "3",
                "node_type": "KSampler",
                "executed": [],
                "timestamp": started + 900,
            },
        ]
    return [
        "execution_error",
        {
            "prompt_id": prompt_id,
            "node_id": "3",
            "node_type": "KSampler",
            "executed": ["4", "5"],
            "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB\n",
            "exception_type": "torch.OutOfMemoryError",
            "traceback": ['  File "execution.py", line 1, in execute\n'],
            "current_inputs": {},
            "current_outputs": {},
            "timestamp": started + 900,
        },
    ]


# -- the OpenAI images API --------------------------------------------------------------------

GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
SIZES = {
    "dall-e-3": frozenset({"1024x1024", "1792x1024", "1024x1792"}),
    "dall-e-2": frozenset({"256x256", "512x512", "1024x1024"}),
}
FREE_SIZE = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")
GENERATION_FIELDS = frozenset(
    {"model", "prompt", "n", "size", "response_format", "quality", "user"}
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


def _gpt_image(model: str) -> bool:
    return model.startswith(("gpt-image-", "chatgpt-image-"))


class FakeOpenAIImages(FakeServer):
    """``/v1/images/*``. Kinds: ``generate`` (either endpoint). Vendor modes: "moderation" (400
    moderation_blocked), "invalid" (400 invalid_request_error about the prompt), "url" (answers
    URLs on the file store even when base64 was asked for, as some self-hosted servers do),
    "fewer" (one image fewer than n), "billing" (400 billing_hard_limit_reached)."""

    def __init__(self, key: str | None, files: FakeFiles) -> None:
        self.key = key
        self.files = files
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.base}/v1"

    def error(self, status: int, code: str, message: str) -> Answer:
        kind = "invalid_request_error" if status < 500 else "server_error"
        body = {"error": {"message": message, "type": kind, "param": None, "code": code.lower()}}
        return json_answer(status, body)

    def answer(self, request: Request) -> Answer:
        if self.key and request.headers.get("authorization") != f"Bearer {self.key}":
            return self.error(401, "invalid_api_key", "Incorrect API key provided.")
        if request.method == "POST" and request.path == "/v1/images/generations":
            return self._images(request, self._generation_fields(request))
        if request.method == "POST" and request.path == "/v1/images/edits":
            return self._images(request, self._edit_fields(request))
        return self.refuse(f"unexpected {request.method} {request.path}")

    def _generation_fields(self, request: Request) -> dict[str, Any] | str:
        if request.headers.get("content-type") != "application/json":
            return "images/generations takes a JSON body"
        body = request.json()
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        unknown = set(body) - GENERATION_FIELDS
        return f"unknown fields {sorted(unknown)}" if unknown else body

    def _edit_fields(self, request: Request) -> dict[str, Any] | str:
        parts = form(request)
        if parts is None:
            return "images/edits takes multipart/form-data"
        files = [p for p in parts if p.filename is not None]
        fields: dict[str, Any] = {p.name: p.text for p in parts if p.filename is None}
        names = {p.name for p in files}
        problem = first_problem(
            (not files, "no image file"),
            (
                names not in ({"image"}, {"image[]"}),
                f"image files go in image or image[], got {names}",
            ),
            (names == {"image"} and len(files) > 1, "several images go in image[]"),
            (len(files) > 16, "at most 16 images"),
            (
                any(p.content_type not in IMAGE_TYPES or image_size(p.data) is None for p in files),
                "each image must be a PNG, JPEG or WebP file",
            ),
            (not str(fields.get("n", "1")).isdigit(), "n must be an integer"),
        )
        if problem:
            return problem
        fields["n"] = int(fields.get("n", "1"))
        fields["images"] = len(files)
        return fields

    def _images(self, request: Request, fields: dict[str, Any] | str) -> Answer:
        mode = self.mode("generate")
        common = self.common(mode)
        if common:
            return common
        problem = fields if isinstance(fields, str) else self._check(fields)
        if problem:
            return self.refuse(str(problem))
        assert isinstance(fields, dict)
        if mode == "moderation":
            return self._refusal(
                "moderation_blocked",
                "image_generation_user_error",
                None,
                "Your request was rejected by the safety system. If you believe this is an "
                "error, contact us.",
            )
        if mode == "billing":
            return self._refusal(
                "billing_hard_limit_reached",
                "invalid_request_error",
                None,
                "Billing hard limit has been reached",
            )
        if mode == "invalid":
            return self._refusal(
                "string_above_max_length",
                "invalid_request_error",
                "prompt",
                "Invalid 'prompt': string too long.",
            )
        return self._made(fields, mode)

    def _refusal(self, code: str, kind: str, param: str | None, message: str) -> Answer:
        return json_answer(
            400, {"error": {"message": message, "type": kind, "param": param, "code": code}}
        )

    def _check(self, fields: dict[str, Any]) -> str | None:
        model = fields.get("model")
        if not isinstance(model, str) or not model:
            return "model is required"
        n, size = fields.get("n", 1), fields.get("size", "auto")
        allowed = GPT_SIZES if _gpt_image(model) else SIZES.get(model)
        free = FREE_SIZE.fullmatch(str(size))
        return first_problem(
            (
                not isinstance(fields.get("prompt"), str) or not fields["prompt"],
                "prompt is required",
            ),
            (
                not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10,
                f"n must be 1 to 10, got {n!r}",
            ),
            (model == "dall-e-3" and n != 1, "dall-e-3 makes one image per request"),
            (allowed is not None and size not in allowed, f"size {size} is not one {model} takes"),
            (
                allowed is None
                and not (free and int(free[1]) % 16 == 0 and int(free[2]) % 16 == 0),
                f"size {size} is not WIDTHxHEIGHT in multiples of 16",
            ),
            (
                _gpt_image(model) and "response_format" in fields,
                f"{model} takes no response_format",
            ),
            (
                fields.get("response_format", "url") not in ("url", "b64_json"),
                "response_format is url or b64_json",
            ),
            ("images" in fields and model == "dall-e-3", "dall-e-3 makes no edits"),
            (
                "images" in fields and model == "dall-e-2" and fields["images"] > 1,
                "dall-e-2 edits one image",
            ),
        )

    def _made(self, fields: dict[str, Any], mode: str) -> Answer:
        model, n = fields["model"], fields["n"] - (1 if mode == "fewer" else 0)
        width, height = (
            int(x)
            for x in str(fields.get("size", "1024x1024")).replace("auto", "1024x1024").split("x")
        )
        data = png((width, height), (10, 200, 120))
        urls = mode == "url" or (
            not _gpt_image(model) and fields.get("response_format", "url") == "url"
        )
        if urls:
            items = [{"url": self.files.url(f"openai-{self.new_id()}.png")} for _ in range(n)]
        else:
            items = [{"b64_json": base64.b64encode(data).decode()} for _ in range(n)]
        body: dict[str, Any] = {"created": int(time.time()), "data": items}
        if _gpt_image(model):
            body["usage"] = {
                "input_tokens": 50,
                "input_tokens_details": {"image_tokens": 40, "text_tokens": 10},
                "output_tokens": 4160 * n,
                "total_tokens": 50 + 4160 * n,
            }
        return json_answer(200, body, {"x-request-id": f"req_{self.new_id()}"})
