"""The VideoGen API's tools, tool executions and resources in the OpenAPI document (contract §3.1
to §3.8, §3.10 and §6; ``api.videogen.tools`` and ``api.videogen.resources``), for
``api.videogen.openapi``, whose helpers and files' schemas it builds on.

Each tool is its own path (``/v1/tools/generate-image``…), whose body is its request model of
``api.videogen.schemas.TOOL_BODIES`` and whose error answers are those of what it reads: files,
a voice, a presenter, a watermark mode (``api.videogen.requests``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from hatchery.api import openapi_schemas as wire
from hatchery.api.openapi import JSON, RETRY_AFTER, Doc, _headers, _ref, price_rules
from hatchery.api.videogen import schemas
from hatchery.api.videogen.auth import Group
from hatchery.api.videogen.openapi import (
    _OUTPUT,
    EXECUTION_EXAMPLE,
    FILE_ID,
    NOT_BLANK,
    RESOURCES_TAG,
    TOOLS_TAG,
    FileTypeName,
    StorageFile,
    _answer,
    _operation,
    _path,
    error,
)
from hatchery.api.videogen.requests import MAX_AVATAR_SECONDS, MAX_INPUT_SECONDS
from hatchery.domain.catalog import Catalog
from hatchery.domain.money import format_cost
from hatchery.settings import Settings

EXECUTION_ID = r"^vg_exec_[A-Za-z0-9_-]{8,64}$"  # domain.tools.is_execution_id
# offline.speech._voice_id, or an ElevenLabs voice (domain.voices)
VOICE_ID = r"^vg_voic_([0-9a-z]{11}|el_[A-Za-z0-9]{1,64})$"
PRESENTER_ID = r"^vg_pres_[0-9a-z]{11}$"  # offline.avatar._presenter_id
# What Pydantic's str_strip_whitespace strips (``openapi.NOT_BLANK`` is anything else).
STRIPPED = "[" + NOT_BLANK.removeprefix("[^")
LANGUAGE = rf"^{STRIPPED}*[A-Za-z]{{2,3}}(?:[-_][A-Za-z]{{2}})?{STRIPPED}*$"  # TextToSpeech's
# A query boolean as the server reads it (Pydantic's words for true and false, in any case).
BOOLEAN = "^(?:[01]|[Tt](?:[Rr][Uu][Ee])?|[Ff](?:[Aa][Ll][Ss][Ee])?|[Yy](?:[Ee][Ss])?|[Nn][Oo]?|"
BOOLEAN += "[Oo](?:[Nn]|[Ff][Ff]))$"

# GET /v1/tools/executions's cursor is base64url (unpadded) of "vge1.<position>" (1 to 18 digits,
# ``api.cursor``): "vge1." and the first digit encode as "dmdlMS4" and one character, each
# further three digits as four (``wire._THREE_DIGITS``), the last one or two as two or three.
EXECUTIONS_CURSOR = (
    f"^dmdlMS4[w-z0-5](?:{wire._THREE_DIGITS}){{0,5}}(?:{wire._TAIL})?$"  # api.videogen.tools
)
VOICE_EXAMPLE = "vg_voic_8ybhriiygfv"  # Ava (English, US)
PRESENTER_EXAMPLE = "vg_pres_b1wirmuqlea"  # Amara
FILE_EXAMPLE = "vg_file_obLD1OX2eJCrEs0071Z4kA"


# --------------------------------------------------------------------------- answers' schemas

ExecutionStatusName = Literal["pending", "running", "succeeded", "failed", "cancelled"]
ToolTypeName = Literal[
    "GENERATE_IMAGE",
    "GENERATE_VIDEO_CLIP",
    "TEXT_TO_SPEECH",
    "GENERATE_SOUND_EFFECT",
    "GENERATE_AVATAR",
    "VECTORIZE_IMAGE",
    "REMOVE_IMAGE_BACKGROUND",
    "REMOVE_VIDEO_BACKGROUND",
    "UPSCALE_IMAGE",
    "UPSCALE_VIDEO",
]  # domain.tools.Tool.tool_type of each tool
Gender = Literal["MALE", "FEMALE", "NEUTRAL"]
Seconds = float | None


class ToolExecutionAccepted(wire.Wire):
    """The execution a tool request queued (or, for a repeated Idempotency-Key, the first
    request's)."""

    toolExecutionId: str = Field(pattern=EXECUTION_ID, examples=[EXECUTION_EXAMPLE])


class ToolExecutionError(wire.Wire):
    """Why an execution failed (the contract's `ApiError`)."""

    message: str = Field(examples=["the image file this tool needs is missing"])
    code: Literal["execution_failed", "content_moderated"] = Field(
        description="`content_moderated` when the content policy refused the request, "
        "`execution_failed` for anything else."
    )


class ToolSuccessResult(wire.Wire):
    """One output: a file of the account (a tool's output, `sourceToolExecutionId` the
    execution's)."""

    fileId: str = Field(pattern=FILE_ID, examples=[_OUTPUT["fileId"]])
    type: FileTypeName
    file: StorageFile | None = Field(
        description="The file, with fresh signed URLs; null in a list of executions (hydrate "
        "it with GET /v1/files/{fileId}) and once a temporary file has been removed."
    )


class ExecutedTool(wire.Wire):
    """A tool execution. Besides the contract's fields it has Hatchery's `createdAt`,
    `startedAt`, `completedAt` and `cost`."""

    toolExecutionId: str = Field(pattern=EXECUTION_ID, examples=[EXECUTION_EXAMPLE])
    status: ExecutionStatusName = Field(
        description="`pending` (queued) -> `running` (a worker has it) -> `succeeded`, `failed` "
        "or `cancelled`, which never change again. A running execution whose attempt is "
        "interrupted (a worker lost) goes back to `pending` and is attempted again."
    )
    toolType: ToolTypeName = Field(description="The tool: its path's name in capitals.")
    progressPercentage: int = Field(
        ge=0,
        le=100,
        description="0 until it runs; while it runs, what its provider reports (0 to 99), "
        "else 0; 100 once it succeeded (0 when it failed or was cancelled).",
    )
    attemptIndex: int = Field(ge=0, description="The current (or last) attempt, from 0.")
    results: list[ToolSuccessResult] | None = Field(
        description="Once it `succeeded`: one result per output. Null otherwise."
    )
    error: ToolExecutionError | None = Field(description="Once it `failed`: why. Null otherwise.")
    createdAt: float = Field(description="Unix seconds.")
    startedAt: Seconds = Field(description="When its last attempt started; null before.")
    completedAt: Seconds = Field(description="When it ended; null before.")
    cost: str = Field(
        pattern=wire.COST,
        examples=["$0.0400"],
        description="Dollars: its price, reserved from the balance, until it ends; then what "
        "was charged (`$0.00` unless it succeeded).",
    )


class ListToolExecutionsResponse(wire.Wire):
    """A page of the account's executions, newest first."""

    toolExecutions: list[ExecutedTool]
    hasMore: bool = Field(description="Whether another page follows.")
    nextCursor: str | None = Field(
        pattern=EXECUTIONS_CURSOR,
        description="Where the next page starts (null on the last page): pass it back unchanged "
        "as `?cursor=`.",
    )


class TtsVoice(wire.Wire):
    """A text-to-speech voice: an eSpeak NG language and voice variant (a classical formant
    synthesizer, not an AI voice), or, when the tool runs on ElevenLabs, a voice of the server's
    ElevenLabs account (`vg_voic_el_…`)."""

    voiceId: str = Field(pattern=VOICE_ID, examples=[VOICE_EXAMPLE])
    languageCode: str = Field(examples=["en-US"], description="A locale tag.")
    displayName: str = Field(examples=["Ava (English, US)"])
    displayGender: Gender = Field(
        description="The eSpeak NG voices are `MALE` or `FEMALE`; an ElevenLabs voice without a "
        "gender label is `NEUTRAL`."
    )
    accent: str | None = Field(examples=["american"])
    description: str | None
    supportsDirectToolExecution: bool = Field(
        description="Whether `POST /v1/tools/text-to-speech` takes it (every voice here does)."
    )
    supportsAllLanguages: bool = Field(
        description="Whether it speaks any language, whatever its `languageCode`."
    )
    isDeprecated: bool = Field(description="Listed only with `includeDeprecatedVoices=true`.")


class GetTtsVoicesResponse(wire.Wire):
    """Every voice, in one answer (the contract's G2 page fields, on its last page)."""

    ttsVoices: list[TtsVoice]
    hasMore: Literal[False] = Field(description="Always false: the whole list is answered.")
    nextCursor: None = Field(description="Always null.")


class AvatarPresenter(wire.Wire):
    """A built-in avatar presenter: a drawn 2-D character (not filmed, not AI). Its URLs need
    no key and do not expire. `displayName` is Hatchery's."""

    avatarPresenterId: str = Field(pattern=PRESENTER_ID, examples=[PRESENTER_EXAMPLE])
    displayableGender: Gender = Field(description="This server's are `MALE` or `FEMALE`.")
    imageUrl: str = Field(description="A PNG of the presenter.")
    thumbnailUrl: str = Field(description="A small PNG of the presenter.")
    previewVideoUrl: str = Field(description="An MP4 of the presenter speaking.")
    displayName: str = Field(examples=["Amara"])


class GetAvatarPresentersResponse(wire.Wire):
    """Every presenter, in one answer (the contract's G2 page fields, on its last page)."""

    avatarPresenters: list[AvatarPresenter]
    hasMore: Literal[False] = Field(description="Always false: the whole list is answered.")
    nextCursor: None = Field(description="Always null.")


ANSWERS: tuple[type[BaseModel], ...] = (
    ToolExecutionAccepted,
    ExecutedTool,
    ListToolExecutionsResponse,
    GetTtsVoicesResponse,
    GetAvatarPresentersResponse,
)


# --------------------------------------------------------------------------- request bodies

# Each body's schema name (the contract's, for the single-asset ones).
BODY_NAMES: dict[type[schemas.ToolBody], str] = {
    schemas.GenerateImage: "GenerateImageRequest",
    schemas.GenerateVideoClip: "GenerateVideoClipRequest",
    schemas.TextToSpeech: "TextToSpeechRequest",
    schemas.GenerateSoundEffect: "GenerateSoundEffectRequest",
    schemas.GenerateAvatar: "GenerateAvatarRequest",
    schemas.ImageAsset: "ImageAssetRequest",
    schemas.VideoAsset: "VideoAssetRequest",
}
_STRIPPED_TEXT = "once leading and trailing white space is removed"
_PER_SECOND_OF_IT = "A price per second counts its length in whole seconds, rounded up."
_IMAGE_INPUT = "an `IMAGE` file of the account (a raster one: not SVG) whose bytes are processed"
_VIDEO_INPUT = (
    f"a `VIDEO` file of the account, at most {MAX_INPUT_SECONDS} s long, whose bytes are processed"
)


def _field_docs(settings: Settings) -> dict[str, str]:
    """What each field of the tools' bodies means (by name; ``_BODY_DOCS`` has those that mean
    something else in one tool)."""
    hours = settings.temporary_file_hours
    return {
        "numResults": "How many outputs to make, 1 to 100 (one `results` entry each); the price "
        "is per output. Null or omitted: 1.",
        "isOutputTemporary": "`true`: the outputs are `TEMPORARY` files, kept at least "
        f"{hours:g} hours (`HATCHERY_TEMPORARY_FILE_HOURS`) and never searched. Null or "
        "omitted: false.",
        "watermarkMode": "`AUTO` (also when omitted): the outputs are marked unless the account "
        "may leave them unmarked (its `no-watermark` flag; `HATCHERY_WATERMARK_AUTO`=`always` or "
        "`never` overrides that); `VIDEO_GEN`: always marked; `NONE`: never marked, which needs "
        "the account's `no-watermark` flag (else 403 `watermark_removal_not_allowed`).",
        "imageFileIds": f"Reference images: at most 4 ids, each of {_IMAGE_INPUT}.",
        "aspectRatio": "The outputs' shape, as a ratio. Null or omitted: 16:9.",
        "prompt": f"What to make: 1 to {schemas.PROMPT_CHARS} characters {_STRIPPED_TEXT}.",
        "imageStorageFileId": f"The image: {_IMAGE_INPUT}.",
        "videoStorageFileId": f"The video: {_VIDEO_INPUT}. {_PER_SECOND_OF_IT}",
        "width": "The ratio's width, 1 to 10000.",
        "height": "The ratio's height, 1 to 10000.",
        "original": f"What to say differently: 1 to 200 characters {_STRIPPED_TEXT}.",
        "replacement": "How to say it: at most 200 characters.",
    }


_BODY_DOCS: dict[str, dict[str, str]] = {
    "GenerateImageRequest": {
        "prompt": f"What to make (with reference images, how to change them): 1 to "
        f"{schemas.PROMPT_CHARS} characters {_STRIPPED_TEXT}.",
    },
    "GenerateVideoClipRequest": {
        "prompt": f"What to make: at most {schemas.PROMPT_CHARS} characters. At least one of "
        "`prompt` (not blank), `imageFileIds` (not empty) and `videoFileId` is needed.",
        "imageFileIds": f"Images to animate or follow: at most 4 ids, each of {_IMAGE_INPUT}.",
        "videoFileId": f"A video to transform: {_VIDEO_INPUT}.",
        "generateAudio": "`true`: the clip has a soundtrack. Null or omitted: false (silent).",
        "durationSeconds": "Seconds of video, 1 to 15 (a field of the contract's G2). Null or "
        f"omitted: the `videoFileId`'s length, rounded up (at most {MAX_INPUT_SECONDS}), else 6. "
        "A price per second counts them, for each output.",
    },
    "TextToSpeechRequest": {
        "ttsText": f"The text to speak: 1 to {schemas.TTS_CHARS} characters {_STRIPPED_TEXT}. "
        "A price per character counts the text as spoken (the pronunciation replacements "
        "applied, numbers written out when asked), for each output; over 10,000 characters "
        "that way is 400.",
        "voiceId": "A voice of `GET /v1/resources/tts-voices`. Null or omitted: on `local` the "
        "first voice of `speechLanguageCode`'s language (else Ava, English US), on ElevenLabs "
        "its premade voice George. An id without the `vg_voic_` prefix is 400 `invalid_id`, an "
        "unknown local one 404 `not_found` (ElevenLabs says itself whether it has a voice: the "
        "execution fails with its `voice_not_found`); a voice none of the tool's providers "
        "speaks is 400.",
        "speechLanguageCode": "The text's language: an ISO 639 code (`en`, `es`, `zh`), with a "
        "region or not (`en-US`, `pt_BR`); the language is its first two letters.",
        "pronunciationReplacements": "At most 100: each `original` is spoken as its `replacement`.",
        "autoExpandPronunciationReplacements": "`true`: numbers, symbols and acronyms are "
        'spelled out (`$100` is said "one hundred dollars"). Null or omitted: false.',
        "voiceSpeed": "A multiplier of the voice's rate, 0.25 to 4 (ElevenLabs takes 0.7 to 1.2: "
        "it is clamped there). Null or omitted: 1.",
    },
    "GenerateSoundEffectRequest": {
        "prompt": f"The sound: 1 to {schemas.PROMPT_CHARS} characters {_STRIPPED_TEXT}.",
        "durationSeconds": "Seconds, 0.5 to 30. Null or omitted: 10. A price per second counts "
        "them rounded up, for each output.",
        "promptInfluence": "How closely to follow the prompt, 0 to 1. Null or omitted: the "
        "tool's own.",
    },
    "GenerateAvatarRequest": {
        "avatarPresenterId": "A presenter of `GET /v1/resources/avatar-presenters`. An id "
        "without the `vg_pres_` prefix is 400 `invalid_id`, an unknown one 404 `not_found`.",
        "audioStorageFileId": f"What the presenter says: an `AUDIO` file of the account, at most "
        f"{MAX_AVATAR_SECONDS} s long, whose bytes are processed (an upload, or a text-to-speech "
        f"result). {_PER_SECOND_OF_IT}",
    },
}
_ID_FIELDS = {  # each id field's pattern
    "imageStorageFileId": FILE_ID,
    "videoStorageFileId": FILE_ID,
    "audioStorageFileId": FILE_ID,
    "videoFileId": FILE_ID,
    "imageFileIds": FILE_ID,
    "voiceId": VOICE_ID,
    "avatarPresenterId": PRESENTER_ID,
}
# At least one thing to work from (GenerateVideoClip.something_to_work_from).
_SOMETHING_TO_WORK_FROM = [
    {"required": ["prompt"], "properties": {"prompt": {"type": "string", "pattern": NOT_BLANK}}},
    {
        "required": ["imageFileIds"],
        "properties": {"imageFileIds": {"type": "array", "minItems": 1}},
    },
    {"required": ["videoFileId"], "properties": {"videoFileId": {"type": "string"}}},
]


def _typed(prop: Doc, kind: str) -> Doc | None:
    """The branch of a (maybe nullable) property of this JSON type, or None."""
    return next((s for s in prop.get("anyOf", [prop]) if s.get("type") == kind), None)


def _constrain(name: str, prop: Doc) -> None:
    """A string's syntax as the server checks it: an id's pattern, the language code's (white
    space around it is stripped first), not blank when it must not be empty."""
    array = _typed(prop, "array")
    string = _typed(array["items"] if array else prop, "string")
    if string is None:
        return
    if name in _ID_FIELDS:
        string["pattern"] = _ID_FIELDS[name]
    elif name == "speechLanguageCode":
        string["pattern"] = LANGUAGE
    elif string.get("minLength"):
        string["pattern"] = NOT_BLANK


def _document_body(name: str, schema: Doc, docs: dict[str, str]) -> None:
    schema.pop("title", None)
    for field, prop in schema["properties"].items():
        prop.pop("title", None)
        prop["description"] = _BODY_DOCS.get(name, {}).get(field) or docs[field]
        _constrain(field, prop)


def request_schemas(settings: Settings) -> Doc:
    """The tools' request bodies (``api.videogen.schemas``), with descriptions and the syntax of
    their strings, and the objects they hold (``AspectRatio``, ``PronunciationReplacement``)."""
    models = list(BODY_NAMES)
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=wire.REF)
    found: Doc = top["$defs"]
    docs = _field_docs(settings)
    bodies = {BODY_NAMES[m]: found.pop(m.__name__) for m in models}
    for name, schema in (bodies | found).items():
        _document_body(name, schema, docs)
    for name, schema in bodies.items():
        used_by = ", ".join(
            f"`{t}`" for t, m in schemas.TOOL_BODIES.items() if BODY_NAMES[m] == name
        )
        schema["description"] = f"The body of {used_by}. Unknown fields are refused."
    bodies["GenerateVideoClipRequest"]["anyOf"] = _SOMETHING_TO_WORK_FROM
    found["AspectRatio"]["description"] = 'A ratio, not pixels: `{"width": 16, "height": 9}`.'
    found["PronunciationReplacement"]["description"] = "A word said differently."
    return bodies | found


# --------------------------------------------------------------------------- examples

_CREATED = 1778232600.412
_PENDING: Doc = {
    "toolExecutionId": EXECUTION_EXAMPLE,
    "status": "pending",
    "toolType": "GENERATE_IMAGE",
    "progressPercentage": 0,
    "attemptIndex": 0,
    "results": None,
    "error": None,
    "createdAt": _CREATED,
    "startedAt": None,
    "completedAt": None,
    "cost": "$0.0400",
}
_SUCCEEDED: Doc = _PENDING | {
    "status": "succeeded",
    "progressPercentage": 100,
    "results": [{"fileId": _OUTPUT["fileId"], "type": "IMAGE", "file": _OUTPUT}],
    "startedAt": _CREATED + 0.8,
    "completedAt": _CREATED + 2.3,
}
_FAILED: Doc = _PENDING | {
    "status": "failed",
    "error": {
        "message": "imageStorageFileId: the file's bytes could not be decoded as an image",
        "code": "execution_failed",
    },
    "toolType": "UPSCALE_IMAGE",
    "startedAt": _CREATED + 0.8,
    "completedAt": _CREATED + 1.1,
    "cost": "$0.00",
}
EXECUTION_EXAMPLES = {"pending": _PENDING, "succeeded": _SUCCEEDED, "failed": _FAILED}
_VOICE: Doc = {
    "voiceId": VOICE_EXAMPLE,
    "languageCode": "en-US",
    "displayName": "Ava (English, US)",
    "displayGender": "FEMALE",
    "accent": "american",
    "description": "eSpeak NG formant speech synthesis (English, US, variant f3): a classical "
    "rule-based synthesizer made by Hatchery's local provider, not an AI voice.",
    "supportsDirectToolExecution": True,
    "supportsAllLanguages": False,
    "isDeprecated": False,
}
_PRESENTER_URL = f"https://hatchery.example.com/v1/resources/avatar-presenters/{PRESENTER_EXAMPLE}"
_PRESENTER: Doc = {
    "avatarPresenterId": PRESENTER_EXAMPLE,
    "displayableGender": "FEMALE",
    "imageUrl": f"{_PRESENTER_URL}/image.png",
    "thumbnailUrl": f"{_PRESENTER_URL}/thumbnail.png",
    "previewVideoUrl": f"{_PRESENTER_URL}/preview.mp4",
    "displayName": "Amara",
}
_SSE_EXAMPLE = (
    "retry: 2000\n\n"
    "id: 0\nevent: pending\n"
    f'data: {{"toolExecutionId":"{EXECUTION_EXAMPLE}","status":"pending",'
    '"occurredAt":1778232600.412}\n\n'
    "id: 812\nevent: running\n"
    f'data: {{"toolExecutionId":"{EXECUTION_EXAMPLE}","status":"running",'
    '"occurredAt":1778232601.212}\n\n'
    "id: 815\nevent: succeeded\n"
    f'data: {{"toolExecutionId":"{EXECUTION_EXAMPLE}","status":"succeeded", ... the whole '
    "execution}\n\n"
)


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class ToolDoc:
    """What the document says of one tool: ``reads`` is what its body names, each looked up
    before anything is queued (``files``, ``voice``, ``presenter``, ``long`` inputs whose length
    is limited)."""

    name: str
    operation_id: str
    summary: str
    makes: str
    reads: frozenset[str]
    example: Doc

    @property
    def model(self) -> type[schemas.ToolBody]:
        return schemas.TOOL_BODIES[self.name]

    @property
    def marked(self) -> bool:
        """Whether its body takes `watermarkMode`."""
        return issubclass(self.model, schemas.MarkedToolBody)


_IMAGE_ASSET = {"imageStorageFileId": FILE_EXAMPLE}
_VIDEO_ASSET = {"videoStorageFileId": "vg_file_3pQ9mN2xL7vK1sR8tY4wZa"}
_FILES, _LONG = frozenset({"files"}), frozenset({"files", "long"})
TOOL_DOCS = (
    ToolDoc(
        "generate-image",
        "generateImage",
        "Generate an image",
        "Makes images (PNG) from a prompt, or changes reference images as the prompt says.",
        _FILES,
        {
            "prompt": "A dashboard hero image with glass UI panels",
            "aspectRatio": {"width": 16, "height": 9},
            "numResults": 1,
        },
    ),
    ToolDoc(
        "generate-video-clip",
        "generateVideoClip",
        "Generate a video clip",
        "Makes video clips (MP4) from a prompt, images to animate, or a video to transform.",
        _LONG,
        {"prompt": "waves on a beach at sunset", "durationSeconds": 4, "generateAudio": True},
    ),
    ToolDoc(
        "text-to-speech",
        "textToSpeech",
        "Text to speech",
        "Speaks a text (MP3) in one of the voices of `GET /v1/resources/tts-voices`.",
        frozenset({"voice"}),
        {"ttsText": "Welcome to the show.", "voiceId": VOICE_EXAMPLE, "voiceSpeed": 1.1},
    ),
    ToolDoc(
        "generate-sound-effect",
        "generateSoundEffect",
        "Generate a sound effect",
        "Makes a sound (audio) from its description.",
        frozenset(),
        {"prompt": "rain on a tin roof", "durationSeconds": 5},
    ),
    ToolDoc(
        "generate-avatar",
        "generateAvatar",
        "Generate an avatar clip",
        "Makes a video (MP4) of a presenter of `GET /v1/resources/avatar-presenters` speaking "
        "an audio file.",
        frozenset({"files", "long", "presenter"}),
        {"avatarPresenterId": PRESENTER_EXAMPLE, "audioStorageFileId": FILE_EXAMPLE},
    ),
    ToolDoc(
        "vectorize-image",
        "vectorizeImage",
        "Vectorize an image",
        "Traces a raster image into an SVG.",
        _FILES,
        _IMAGE_ASSET,
    ),
    ToolDoc(
        "remove-image-background",
        "removeImageBackground",
        "Remove an image's background",
        "Cuts the subject of an image out onto a transparent background (PNG).",
        _FILES,
        _IMAGE_ASSET,
    ),
    ToolDoc(
        "remove-video-background",
        "removeVideoBackground",
        "Remove a video's background",
        "Cuts the subject of a video out onto a transparent background.",
        _LONG,
        _VIDEO_ASSET,
    ),
    ToolDoc(
        "upscale-image",
        "upscaleImage",
        "Upscale an image",
        "Makes a higher-resolution copy of an image.",
        _FILES,
        _IMAGE_ASSET,
    ),
    ToolDoc(
        "upscale-video",
        "upscaleVideo",
        "Upscale a video",
        "Makes a higher-resolution copy of a video.",
        _LONG,
        _VIDEO_ASSET,
    ),
)

_BODY_PROBLEMS = (
    "the body is not a JSON object of the tool's schema: a field is missing, of the wrong type "
    "or out of range, or unknown (`prompt: String should have at least 1 character`); the "
    "Idempotency-Key is not 1 to 255 printable ASCII characters"
)
_PROVIDERS = (
    "; or none of the tool's providers can make the request (`... cannot make this request: "
    "...`; the built-in `local` provider makes anything the schema allows)"
)


_NOTHING_TO_WORK_FROM = "give at least one of prompt, imageFileIds and videoFileId"


def _bad_request(tool: ToolDoc) -> Doc:
    causes = {"invalid_parameters": _BODY_PROBLEMS}
    if "long" in tool.reads:
        longest = (
            f"an audio file longer than {MAX_AVATAR_SECONDS} s"
            if "presenter" in tool.reads
            else f"a video longer than {MAX_INPUT_SECONDS} s"
        )
        causes["invalid_parameters"] += f"; {longest}"
    if "voice" in tool.reads:
        causes["invalid_parameters"] += "; a voice that text-to-speech cannot use"
    causes["invalid_parameters"] += _PROVIDERS
    ids = [("files", "a file id"), ("voice", "`voiceId`"), ("presenter", "`avatarPresenterId`")]
    named = [what for reads, what in ids if reads in tool.reads]
    if named:
        causes["invalid_id"] = f"{' or '.join(named)} is not an id of its kind (the message "
        causes["invalid_id"] += "names the field: `imageFileIds[1]: 'x' is not a file id; ...`)"
    if "files" in tool.reads:
        causes["invalid_file_type"] = (
            "a file is of another type than the field needs (an `AUDIO` file as "
            "`imageStorageFileId`), an SVG where a raster image is needed, or a file that "
            "failed to process"
        )
    required = tool.model.model_json_schema().get("required")
    message = f"{required[0]}: Field required" if required else _NOTHING_TO_WORK_FROM
    return error(causes, message=message)


def _not_found(tool: ToolDoc) -> Doc:
    things = [("files", "a file"), ("voice", "the voice"), ("presenter", "the presenter")]
    named = [what for reads, what in things if reads in tool.reads]
    cause = "this server's catalog does not offer the tool (`[tools.NAME]`)"
    if named:
        cause = f"{' or '.join(named)} the body names is not the account's, or does not exist "
        cause += "(the message names the field); or this server's catalog does not offer the tool"
    return error({"not_found": cause})


def _conflict(tool: ToolDoc) -> Doc:
    causes = {}
    if "files" in tool.reads:
        causes["file_not_ready"] = (
            "a file the body names is still uploading or processing: retry once its "
            "`downloadSource` is `ready`"
        )
    causes["conflict"] = (
        "the first request with this Idempotency-Key is still being handled: retry after "
        "`Retry-After` seconds; or another request took the key over while this one ran"
    )
    return error(causes, headers={"Retry-After": RETRY_AFTER})


def _tool_errors(tool: ToolDoc, settings: Settings) -> Doc:
    forbidden = {"forbidden": "the account is suspended"}
    if tool.marked:
        forbidden["watermark_removal_not_allowed"] = (
            "`watermarkMode` is `NONE` and the account may not leave outputs unmarked: "
            "`requirement` says what it needs"
        )
    timeout, limit = settings.body_timeout, settings.max_body_bytes
    return {
        "400": _bad_request(tool),
        "402": error(
            {
                "insufficient_credits": "the available balance (the account's balance less the "
                "prices of its unfinished tasks and executions) cannot cover this execution's "
                "price; nothing is created"
            }
        ),
        "403": error(forbidden),
        "404": _not_found(tool),
        "408": error({"request_timeout": f"the body did not arrive within {timeout:g} s"}),
        "409": _conflict(tool),
        "413": error({"file_too_large": f"the body is over {limit} bytes"}),
        "422": error(
            {
                "idempotency_key_reused": "this Idempotency-Key was already used (within 24 "
                "hours, by this account, on any tool or `POST /v1/generate`) with another body"
            }
        ),
    }


def _idempotency_key() -> Doc:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": wire.IDEMPOTENCY_KEY},
        "description": "1 to 255 printable ASCII characters (a UUID per logical request is "
        "right); kept 24 hours per account, shared with `POST /v1/generate`. The same key and "
        "body answer 202 with the execution the first request queued, creating and charging "
        "nothing; the key with another body is 422 `idempotency_key_reused`; while the first "
        "request with it is still being handled, 409 `conflict`. A refused request does not "
        "use up its key. Any other value is 400 `invalid_parameters`.",
        "example": "9b2f6c1e-6a7d-4f0e-9a51-3c7d2f8e4b10",
    }


EXECUTION_LINKS = {
    name: {
        "operationId": operation,
        "parameters": {"toolExecutionId": "$response.body#/toolExecutionId"},
        "description": description,
    }
    for name, operation, description in (
        ("GetToolExecution", "getToolExecution", "Poll the execution."),
        ("CancelToolExecution", "cancelToolExecution", "Cancel the execution."),
        ("StreamToolExecutionEvents", "streamToolExecutionEvents", "Follow its status changes."),
    )
}


def _price(tool: ToolDoc, catalog: Catalog | None) -> str:
    model = catalog.tools.get(tool.name) if catalog else None
    if catalog is None:
        return "Its price is this server's catalog's (`[tools.NAME]`)."
    if model is None:
        return "**This server does not offer it**: every request is 404 `not_found`."
    per = {"output": "output", "second": "second of each output", "character": "character"}
    return (
        f"Its price: {format_cost(model.unit_price_micros)} per {per[model.unit]}"
        f"{price_rules(model)} (providers, in order: {', '.join(model.providers)})."
    )


def _run_tool(tool: ToolDoc, settings: Settings, catalog: Catalog | None) -> Doc:
    description = (
        f"{tool.makes} Queues an execution and answers 202 with its id at once: poll it (`GET "
        "/v1/tools/executions/{toolExecutionId}`) or stream its status changes until it ends. "
        "Everything the body names is looked up first (files: the account's, processed, of the "
        "field's type), so a request that cannot run is refused and nothing is created or "
        "reserved. The price is reserved from the balance when it is queued, charged when it "
        f"succeeds, released if it fails or is cancelled. {_price(tool, catalog)}"
    )
    accepted = _answer(
        "The execution, queued (or the one a repeated Idempotency-Key queued).",
        "ToolExecutionAccepted",
        {"queued": {"toolExecutionId": EXECUTION_EXAMPLE}},
        links=EXECUTION_LINKS,
    )
    operation = _operation(
        settings,
        tool.operation_id,
        tool.summary,
        description,
        Group.TOOLS,
        {"202": accepted} | _tool_errors(tool, settings),
        "the other tools",
        tag=TOOLS_TAG,
    )
    operation["parameters"] = [_idempotency_key()]
    operation["requestBody"] = {
        "required": True,
        "description": f"A JSON object, at most {settings.max_body_bytes} bytes.",
        "content": {
            JSON: {
                "schema": _ref("schemas", BODY_NAMES[tool.model]),
                "examples": {tool.operation_id: {"value": tool.example}},
            }
        },
    }
    return operation


# --------------------------------------------------------------------------- executions


def _execution_id() -> Doc:
    return _path(
        "toolExecutionId",
        EXECUTION_ID,
        "The execution's id. Anything else is 400 `invalid_id`; another account's execution, "
        "or none, is 404 `not_found`.",
        EXECUTION_EXAMPLE,
    )


_BAD_ID = "'abc' is not a tool execution id; they look like vg_exec_..."
_EXECUTION_400 = {"invalid_id": "`toolExecutionId` is not an execution id (`vg_exec_...`)"}
_EXECUTION_404 = {
    "not_found": "no execution with this id is the account's (`Tool execution not found: ...`)"
}


def _query(name: str, schema: Doc, description: str, example: object = None) -> Doc:
    parameter: Doc = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def _boolean(name: str, description: str) -> Doc:
    return _query(
        name,
        {"type": "string", "pattern": BOOLEAN},
        f"{description} `true` or `false` (also `1` and `0`, `yes` and `no`, `on` and `off`, "
        "`t` and `f`, `y` and `n`, in any case); anything else, an empty value too, is 400 "
        "`invalid_parameters` (checked before the API key).",
        "false",
    )


def _list_executions(settings: Settings) -> Doc:
    operation = _operation(
        settings,
        "listToolExecutions",
        "List tool executions",
        "The account's executions, newest first, by cursor (the contract's G2 list), 50 a page "
        "unless `limit` says otherwise. Their results name their files without hydrating them "
        "(`file` null): `GET /v1/tools/executions/{id}` or `GET /v1/files/{fileId}` does.",
        Group.EXECUTION,
        {
            "200": _answer(
                "A page of executions.",
                "ListToolExecutionsResponse",
                {
                    "page": {
                        "toolExecutions": [_SUCCEEDED, _FAILED],
                        "hasMore": True,
                        "nextCursor": "dmdlMS40Mg",
                    },
                    "last": {"toolExecutions": [_PENDING], "hasMore": False, "nextCursor": None},
                },
            ),
            "400": error(
                {
                    "invalid_parameters": "`limit` not a whole number from 1 to 200, `selfOnly` "
                    "not a boolean (both checked before the API key), or a `cursor` this server "
                    "did not give out"
                },
                message="cursor is not valid: pass back nextCursor from the previous page of "
                "GET /v1/tools/executions unchanged",
            ),
        },
        "the other execution reads",
        tag=TOOLS_TAG,
    )
    operation["parameters"] = [
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 200},
            "Executions per page (50 when omitted). Anything but a whole number from 1 to 200 is "
            "400 `invalid_parameters`.",
        ),
        _query(
            "cursor",
            {"type": "string", "pattern": EXECUTIONS_CURSOR},
            "Where the page starts: `nextCursor` of the previous page, passed back unchanged "
            "(with any `limit`). A cursor this server did not give out is 400 "
            "`invalid_parameters`.",
            "dmdlMS40Mg",
        ),
        _boolean("selfOnly", "Accepted, and changes nothing: a key sees its account's."),
    ]
    return operation


def _by_execution(
    settings: Settings,
    operation_id: str,
    summary: str,
    description: str,
    group: Group,
    answer: Doc,
    *shared: str,
    status: str = "200",
) -> Doc:
    responses = {
        status: answer,
        "400": error(_EXECUTION_400, message=_BAD_ID),
        "404": error(_EXECUTION_404, message=f"Tool execution not found: {EXECUTION_EXAMPLE}"),
    }
    operation = _operation(
        settings, operation_id, summary, description, group, responses, *shared, tag=TOOLS_TAG
    )
    operation["parameters"] = [_execution_id()]
    return operation


def _events(settings: Settings) -> Doc:
    operation = _by_execution(
        settings,
        "streamToolExecutionEvents",
        "Stream an execution's status changes",
        "Server-Sent Events: `retry: 2000`, the execution's current status at once (or, with "
        "`Last-Event-ID`, every event after that one), then each status change; the stream ends "
        "after the terminal event. Each event has an `id`; its `event` is the status as the "
        "execution shows it (`pending`, `running`, `succeeded`, `failed`, `cancelled`), and "
        "its `data` `{toolExecutionId, status, occurredAt}` (`occurredAt` in Unix seconds), or "
        "the whole execution (`ExecutedTool`) for the terminal one. A comment (`: keep-alive`) "
        "is sent after 15 s of silence. Errors are answered before the stream starts.",
        Group.EXECUTION,
        {
            "description": "The event stream.",
            "headers": _headers(),
            "content": {
                "text/event-stream": {"schema": {"type": "string"}, "example": _SSE_EXAMPLE}
            },
        },
        "the other execution reads",
    )
    operation["responses"]["400"] = error(
        _EXECUTION_400
        | {"invalid_parameters": "a `Last-Event-ID` that is not an event id (checked first)"},
        message=_BAD_ID,
    )
    operation["parameters"].append(
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": wire.LAST_EVENT_ID},
            "description": "The id of the last event received: the stream resends every event "
            "after it (browsers' EventSource sends it when it reconnects). Anything but an event "
            "id (a whole number, at most 18 digits) is 400 `invalid_parameters`.",
            "example": "812",
        }
    )
    return operation


def execution_paths(settings: Settings) -> dict[str, Doc]:
    """``api.videogen.tools``'s execution routes."""
    get = _by_execution(
        settings,
        "getToolExecution",
        "Get a tool execution",
        "The execution; once it succeeded, its results' files with fresh signed URLs (valid "
        f"{settings.signed_url_seconds} s, `HATCHERY_SIGNED_URL_SECONDS`).",
        Group.EXECUTION,
        _answer("The execution.", "ExecutedTool", EXECUTION_EXAMPLES),
        "the other execution reads",
    )
    cancel = _by_execution(
        settings,
        "cancelToolExecution",
        "Cancel a tool execution",
        "A `pending` or `running` execution becomes `cancelled`: its reservation is released "
        "and its upstream job cancelled where the vendor allows it. One that has already ended "
        "is left as it was, with the same answer. No body.",
        Group.CANCEL,
        _answer(
            "The execution's id (look it up for its status).",
            "ToolExecutionAccepted",
            {"cancelled": {"toolExecutionId": EXECUTION_EXAMPLE}},
        ),
        status="202",
    )
    one = "/v1/tools/executions/{toolExecutionId}"
    return {
        "/v1/tools/executions": {"get": _list_executions(settings)},
        one: {"get": get},
        f"{one}/cancel": {"post": cancel},
        f"{one}/events": {"get": _events(settings)},
    }


# --------------------------------------------------------------------------- resources


def _resources(settings: Settings) -> dict[str, Doc]:
    voices = _operation(
        settings,
        "listTtsVoices",
        "List text-to-speech voices",
        "The voices of `POST /v1/tools/text-to-speech`: when the tool runs on ElevenLabs, the "
        "voices of the server's ElevenLabs account first (`vg_voic_el_…`, read from ElevenLabs "
        "at most every 10 minutes); then, when it runs locally, for each of 18 languages a "
        "female and a male eSpeak NG voice (a classical formant synthesizer, not an AI voice), "
        "ordered by language. The same for every account; all of them in one answer.",
        Group.RESOURCES,
        {
            "200": _answer(
                "The voices.",
                "GetTtsVoicesResponse",
                {"voices": {"ttsVoices": [_VOICE], "hasMore": False, "nextCursor": None}},
            ),
            "400": error(
                {
                    "invalid_parameters": "`includeDeprecatedVoices` not a boolean (checked "
                    "before the API key)"
                },
                message="query.includeDeprecatedVoices: Input should be a valid boolean, unable "
                "to interpret input",
            ),
            "503": error(
                {
                    "service_unavailable": "the database did not answer in time, or the "
                    "ElevenLabs voices could not be listed and the tool has no local voices; "
                    "retry"
                }
            ),
        },
        "the presenters' list",
        tag=RESOURCES_TAG,
    )
    voices["parameters"] = [
        _boolean("includeDeprecatedVoices", "`true`: deprecated voices too. Omitted: `false`.")
    ]
    presenters = _operation(
        settings,
        "listAvatarPresenters",
        "List avatar presenters",
        "The presenters of `POST /v1/tools/generate-avatar`: drawn 2-D characters (not filmed, "
        "not AI), in a fixed order. The same for every account; all of them in one answer.",
        Group.RESOURCES,
        {
            "200": _answer(
                "The presenters.",
                "GetAvatarPresentersResponse",
                {
                    "presenters": {
                        "avatarPresenters": [_PRESENTER],
                        "hasMore": False,
                        "nextCursor": None,
                    }
                },
            )
        },
        "the voices' list",
        tag=RESOURCES_TAG,
    )
    return {
        "/v1/resources/tts-voices": {"get": voices},
        "/v1/resources/avatar-presenters": {"get": presenters},
        "/v1/resources/avatar-presenters/{presenterId}/{asset}": {"get": _presenter_asset()},
    }


ASSETS = {"image.png": "image/png", "thumbnail.png": "image/png", "preview.mp4": "video/mp4"}


def _asset_headers() -> Doc:
    text = {"type": "string"}
    return _headers() | {
        "Cache-Control": {"description": "`public, max-age=86400`.", "schema": text},
        "ETag": {
            "description": "The asset's entity tag: send it back as `If-None-Match`.",
            "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'},
        },
    }


def _presenter_asset() -> Doc:
    content = {
        media: {"schema": {"type": "string", "contentMediaType": media}}
        for media in sorted(set(ASSETS.values()))
    }
    return {
        "operationId": "getAvatarPresenterAsset",
        "tags": [RESOURCES_TAG],
        "summary": "An avatar presenter's picture or preview",
        "description": "`imageUrl`, `thumbnailUrl` and `previewVideoUrl` of a presenter: plain "
        "URLs that need no key and never change (cacheable for a day). Counted against the "
        "client IP's limit only.",
        "security": [],
        "parameters": [
            _path(
                "presenterId",
                PRESENTER_ID,
                "The presenter's id. Anything but a presenter's is 404 `not_found`.",
                PRESENTER_EXAMPLE,
            ),
            {
                "name": "asset",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(ASSETS)},
                "description": "`image.png` (a 720x720 portrait), `thumbnail.png` (256x256) or "
                "`preview.mp4` (a few seconds, 360x360, the presenter saying hello). Anything "
                "else is 404 `not_found`.",
                "example": "thumbnail.png",
            },
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The `ETag` of an earlier answer: 304 while the asset is the same.",
            },
        ],
        "responses": {
            "200": {"description": "The asset.", "headers": _asset_headers(), "content": content},
            "304": {"description": "Unchanged (`If-None-Match`).", "headers": _asset_headers()},
            "404": error(
                {"not_found": "no presenter with this id, or no such asset"},
                message=f"no such presenter asset: {PRESENTER_EXAMPLE}/image.jpg",
            ),
            "429": error(
                {"rate_limited": "over the client IP's limit; the message says when to retry"},
                headers={"Retry-After": RETRY_AFTER | {"required": True}},
            ),
            "500": error({"internal_error": "an unexpected failure"}),
        },
    }


def paths(settings: Settings, catalog: Catalog | None = None) -> dict[str, Doc]:
    """The tools (one path each), the executions and the resources."""
    tools = {
        f"/v1/tools/{tool.name}": {"post": _run_tool(tool, settings, catalog)} for tool in TOOL_DOCS
    }
    return tools | execution_paths(settings) | _resources(settings)
