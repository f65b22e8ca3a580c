"""Tools: the media jobs the VideoGen API names (generate an image, speak a text, remove a
background…), as the engine knows them. Pure: no I/O, no wire format.

A tool execution is a task of type ``tool`` whose ``model`` is the tool's name; its ``params``
are the engine's (:class:`ToolParams`), made by a dialect from its own request body. A tool makes
``num_outputs`` files of one kind (image, video or audio) and is priced per output, per second of
output or per character of text (the catalog's ``[tools.NAME]``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

EXECUTION_PREFIX = "vg_exec_"
MAX_RESULTS = 100


class Output(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


class Unit(StrEnum):
    OUTPUT = "output"  # one made file
    SECOND = "second"  # a second of each made file
    CHARACTER = "character"  # a character of the text, per made file


@dataclass(frozen=True)
class Tool:
    name: str  # the path segment: generate-image
    output: Output

    @property
    def tool_type(self) -> str:
        """``GENERATE_IMAGE``: the name the VideoGen API shows."""
        return self.name.upper().replace("-", "_")


TOOLS = {
    tool.name: tool
    for tool in (
        Tool("generate-image", Output.IMAGE),
        Tool("generate-video-clip", Output.VIDEO),
        Tool("text-to-speech", Output.AUDIO),
        Tool("generate-sound-effect", Output.AUDIO),
        Tool("generate-avatar", Output.VIDEO),
        Tool("vectorize-image", Output.IMAGE),
        Tool("remove-image-background", Output.IMAGE),
        Tool("remove-video-background", Output.VIDEO),
        Tool("upscale-image", Output.IMAGE),
        Tool("upscale-video", Output.VIDEO),
    )
}
BY_TOOL_TYPE = {tool.tool_type: tool for tool in TOOLS.values()}

# Tools whose output depends on their input alone: every provider makes it once and gives
# numResults copies of it.
SAME_EACH_TIME = frozenset(
    {
        "vectorize-image",
        "remove-image-background",
        "remove-video-background",
        "upscale-image",
        "upscale-video",
    }
)


@dataclass(frozen=True)
class InputFile:
    """A stored file a tool reads: where its bytes are, and what they are."""

    file_id: str
    key: str
    type: str  # IMAGE, VIDEO or AUDIO
    content_type: str
    seconds: float | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> InputFile:
        return cls(**data)


@dataclass(frozen=True)
class ToolParams:
    """What an execution asks for, in the engine's words (stored as the task's ``params``).

    ``prompt`` is the text the tool works from (a prompt, or the text to speak): moderation reads
    it. ``duration`` is the billed seconds of each output (0 when the tool is not priced by the
    second). ``inputs`` name the stored files it reads, by role (``image``, ``video``, ``audio``).
    ``options`` are the tool's own settings (a voice, a speed, an aspect ratio…).
    """

    tool: str
    prompt: str = ""
    num_outputs: int = 1
    duration: int = 0
    inputs: tuple[tuple[str, InputFile], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    watermark: bool = False
    temporary: bool = False
    unit: str = Unit.OUTPUT.value  # what the price counts, for the usage record
    characters: int = 0  # text to speech: the text as spoken (what a character price counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "prompt": self.prompt,
            "num_outputs": self.num_outputs,
            "duration": self.duration,
            "inputs": [{"role": role, **f.__dict__} for role, f in self.inputs],
            "options": dict(self.options),
            "watermark": self.watermark,
            "temporary": self.temporary,
            "unit": self.unit,
            "characters": self.characters,
        }

    @classmethod
    def of(cls, params: dict[str, Any]) -> ToolParams:
        inputs = tuple(
            (str(item["role"]), InputFile.of({k: v for k, v in item.items() if k != "role"}))
            for item in params.get("inputs", ())
        )
        return cls(
            tool=params["tool"],
            prompt=params.get("prompt", ""),
            num_outputs=int(params.get("num_outputs", 1)),
            duration=int(params.get("duration", 0)),
            inputs=inputs,
            options=tuple(dict(params.get("options") or {}).items()),
            watermark=bool(params.get("watermark")),
            temporary=bool(params.get("temporary")),
            unit=str(params.get("unit", Unit.OUTPUT.value)),
            characters=int(params.get("characters", 0)),
        )


def new_execution_id() -> str:
    """``vg_exec_`` and 22 URL-safe characters (128 random bits)."""
    return EXECUTION_PREFIX + secrets.token_urlsafe(16)


_EXECUTION_ID = re.compile(re.escape(EXECUTION_PREFIX) + r"[A-Za-z0-9_-]{8,64}")


def is_execution_id(value: str) -> bool:
    return _EXECUTION_ID.fullmatch(value) is not None
