"""The VideoGen API's part of the OpenAPI document, merged into it by ``api.openapi``: the files
operations (contract §3.9 and §4; ``api.videogen.files``), the tools, tool executions and resources
(§3.1 to §3.8, §3.10 and §6; ``api.videogen.tools`` and ``resources``, written out in
``api.videogen.openapi_tools``), the webhook endpoints and the delivery log (§5;
``api.videogen.webhooks``, written out in ``api.videogen.openapi_webhooks``), and the object URLs
the files' answers hand out, which answer errors with the same ``{"message", "code"}`` body:
signed downloads and uploads (``api.storage``) and streaming (``api.videogen.playback``).

Each operation lists the statuses and codes its route can answer, as ``api.videogen.errors`` maps
the domain's errors (the object URLs write theirs out themselves), and its hourly limit per API
key from ``api.videogen.auth`` (the contract's, or ``HATCHERY_VIDEOGEN_RATE_LIMITS``'). The
answers' schemas are Pydantic models here, as in ``api.openapi_schemas``; the request bodies' are
the server's own models (``api.videogen.schemas``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from limits import RateLimitItem
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from hatchery import errors
from hatchery.api import openapi_schemas as wire
from hatchery.api.openapi import JSON, RETRY_AFTER, SECURITY, Doc, _headers, _ref
from hatchery.api.videogen.auth import Group, group_limits
from hatchery.api.videogen.errors import ANSWERS, MISSING_KEY
from hatchery.api.videogen.schemas import Body, CreateFileUpload, SearchFiles
from hatchery.domain.catalog import Catalog
from hatchery.settings import Settings

TAG = "VideoGen: Files"
TOOLS_TAG = "VideoGen: Tools"
RESOURCES_TAG = "VideoGen: Resources"
WEBHOOKS_TAG = "VideoGen: Webhooks"
# the VideoGen API's operations, by what they do
DIALECT_TAGS = (TAG, TOOLS_TAG, RESOURCES_TAG, WEBHOOKS_TAG)
OBJECT_TAG = "Files"

FILE_ID = r"^vg_file_[A-Za-z0-9_-]{8,40}$"  # domain.files.is_file_id
PLAYBACK_ID = r"^vg_play_[A-Za-z0-9_-]{8,40}$"  # domain.files.is_playback_id
SEGMENT = r"^[A-Za-z0-9_-]{1,64}\.(ts|m4s|mp4|aac)$"  # api.videogen.playback.SEGMENT
OBJECT_KEY = r"^(outputs|files|uploads)(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){1,5}$"  # storage.local
SIGNATURE = r"^[A-Za-z0-9_-]{43}$"  # an HMAC-SHA256, base64url without padding
# A character Pydantic's str_strip_whitespace does not strip (it strips Unicode's White_Space, not
# quite Python's str.strip()): a string with one is not blank once stripped.
NOT_BLANK = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
# Text kept as given (``schemas.TextBody``): something not blank, and no NUL anywhere.
TEXT = f"^[^\\u0000]*{NOT_BLANK.removesuffix(']')}\\u0000][^\\u0000]*$"


# --------------------------------------------------------------------------- the files cursor
# GET /v1/files's cursor is base64url (unpadded) of "vgf1.<micros>.<seq>" (``api.cursor.pack``):
# the page's last file's update time in Unix microseconds (16 digits from 2001 to 2286) and its
# row number (1 to 18 digits). "vgf1." encodes as "dmdmMS4" and the first digit; each further three
# digits as four characters (``wire._THREE_DIGITS``); "." and one or two digits as "Lj" and one or
# two characters; the last one or two digits as two or three (``wire._TAIL``).
_AFTER_DOT = "[AEIMQUYcgk]"  # the character after "Lj": "." then a digit
_LAST = "[w-z0-5]"  # the fourth character of a group that ends with a digit
_ONE_DIGIT = "(?:[MN][AQgw]|O[AQ])"
_MICROS = f"dmdmMS4{_LAST}(?:{wire._THREE_DIGITS}){{5}}"
_SEQ = wire._alternatives(
    f"Lj{_AFTER_DOT}{_LAST}"
    + wire._alternatives(  # "." and the first two digits, then
        f"(?:{wire._THREE_DIGITS}){{0,4}}(?:{wire._TAIL})?",  # 0 to 14 more
        f"(?:{wire._THREE_DIGITS}){{5}}{_ONE_DIGIT}?",  # 15 or 16 more
    ),
    f"Lj{_AFTER_DOT}",  # "." and one digit
)
FILES_CURSOR = f"^{_MICROS}{_SEQ}$"  # for the cursors of api.videogen.files.CURSOR, "vgf1."


# --------------------------------------------------------------------------- answers' schemas

SourceStatusName = Literal["pending", "ready", "failed", "skipped"]
FileStatusName = Literal["uploading", "processing", "ready", "failed"]
FileTypeName = Literal["IMAGE", "VIDEO", "AUDIO"]
ScopeName = Literal["GLOBAL", "TEMPORARY"]
Size = int | None


def _not_null(*names: str) -> Any:
    """Fields that are left out rather than null: not required, and no default in the schema."""

    def change(schema: dict[str, Any]) -> None:
        for name in names:
            prop = schema["properties"][name]
            prop.pop("default", None)
            prop.update(next(s for s in prop.pop("anyOf") if s.get("type") != "null"))

    return change


class FileSource(wire.Wire):
    """One of a file's sources (renditions). `url` is a signed URL, set when `status` is
    `ready`; it works without a key until `expiresAt`. Hydrate the file for fresh ones."""

    status: SourceStatusName = Field(
        description="`pending` (not made yet: processing, or the bytes have not arrived), "
        "`ready`, `failed` (could not be made) or `skipped` (does not apply: no thumbnail for "
        "audio)."
    )
    url: str | None = Field(
        description="The signed URL; null unless `ready`.",
        examples=["https://hatchery.example.com/storage/files/vg_file_obLD1OX2eJCrEs0071Z4kA/"
                  "original?expires=1778236200&signature=..."],
    )  # fmt: skip
    expiresAt: int | None = Field(
        ge=0, description="When `url` stops working, in Unix seconds; null with no `url`."
    )
    width: Size = Field(default=None, ge=0, description="Pixels, when known.")
    height: Size = Field(default=None, ge=0, description="Pixels, when known.")
    fileBytes: Size = Field(default=None, ge=0, description="The source's size, when known.")


class StorageFile(wire.Wire):
    """A file: an upload or a tool's output. Besides the contract's fields it has Hatchery's
    `status`, `error`, `contentType`, `fileBytes`, `createdAt` and `updatedAt` (a superset the
    vendor's SDKs keep)."""

    model_config = ConfigDict(
        json_schema_extra=_not_null("sourceToolType", "sourceToolExecutionId")
    )

    fileId: str = Field(pattern=FILE_ID, examples=["vg_file_obLD1OX2eJCrEs0071Z4kA"])
    type: FileTypeName | None = Field(
        description="Read from the bytes (never from the name); null until they are processed."
    )
    scope: ScopeName = Field(
        description="`GLOBAL` (kept until removed) or `TEMPORARY` (kept at least 24 hours)."
    )
    displayName: str
    description: str | None = Field(description="A tool output's prompt; null for uploads.")
    durationSeconds: float | None = Field(ge=0, description="Video and audio: their length.")
    transcript: str | None = Field(description="Always null on this server.")
    thumbnailSource: FileSource = Field(description="A JPEG within 256x256 (`skipped` for audio).")
    previewSource: FileSource = Field(
        description="Images within 1280x1280, video at most 720p H.264, audio AAC."
    )
    downloadSource: FileSource = Field(description="The original bytes.")
    hlsSource: FileSource | None = Field(
        description="The private HLS stream (a signed playlist URL), once a public preview made "
        "it; null before."
    )
    isPublicPreviewEnabled: bool
    publicHlsUrl: str | None = Field(
        description="`/public/{publicPlaybackId}/index.m3u8`, which needs no key and does not "
        "expire; video and audio with public preview only (it plays once `hlsSource` is ready)."
    )
    publicPlaybackId: str | None = Field(pattern=PLAYBACK_ID, examples=["vg_play_Zm9vYmFyYmF6cXV4"])
    status: FileStatusName = Field(
        description="Hatchery's: `uploading` (waiting for the bytes) -> `processing` -> `ready`, "
        "or `failed` (`error` says why). A public preview takes a ready video or audio file back "
        "to `processing` while its stream is made."
    )
    error: str | None = Field(description="Why the file failed; null otherwise.")
    contentType: str | None = Field(examples=["image/png"])
    fileBytes: Size = Field(ge=0, description="The original's size, once the bytes arrived.")
    createdAt: float = Field(description="Unix seconds.")
    updatedAt: float = Field(description="Unix seconds: lists are ordered by it, newest first.")
    sourceToolType: str | None = Field(
        default=None, description="Only on a tool's output: the tool that made it."
    )
    sourceToolExecutionId: str | None = Field(
        default=None, description="Only on a tool's output: the execution (task) that made it."
    )


class GetFilesResponse(wire.Wire):
    """A page of the account's files that are not archived, most recently updated first."""

    files: list[StorageFile]
    hasMore: bool = Field(description="Whether another page follows.")
    nextCursor: str | None = Field(
        pattern=FILES_CURSOR,
        description="Where the next page starts (null on the last page): pass it back unchanged "
        "as `?cursor=`.",
    )


class FileSearchResult(wire.Wire):
    similarity: float = Field(
        ge=0, le=1, description="The share of the query's distinct words the file contains."
    )
    file: StorageFile


class SearchFilesResponse(wire.Wire):
    """The matching files, most similar first."""

    results: list[FileSearchResult]


class FileUploadResponse(wire.Wire):
    """The new file (`uploading`) and where to PUT its bytes."""

    fileId: str = Field(pattern=FILE_ID, examples=["vg_file_obLD1OX2eJCrEs0071Z4kA"])
    uploadUrl: str = Field(
        description="A signed URL: `PUT` the file's raw bytes to it, without a key.",
        examples=["https://hatchery.example.com/storage/uploads/vg_file_obLD1OX2eJCrEs0071Z4kA"
                  "?expires=1778236200&signature=..."],
    )  # fmt: skip


ERROR_CODES = {  # what each code means, for the descriptions of the error answers
    MISSING_KEY: "no `Authorization` header",
    "invalid_api_key": "the key is malformed, unknown, revoked or expired",
    "forbidden": "the account is suspended",
    "watermark_removal_not_allowed": "`watermarkMode` `NONE` without the account's permission "
    "(`requirement` says what it needs)",
    "insufficient_credits": "the available balance cannot cover the execution's price",
    "invalid_id": "an id that is not one of its kind (file ids look like `vg_file_...`)",
    "invalid_parameters": "a query parameter, a header or the body is not valid",
    "invalid_file_type": "a file given to a tool is of another type, or could not be processed",
    "file_too_large": "the body is larger than this server takes",
    "request_timeout": "the body did not arrive in time",
    "not_found": "no such file, execution, voice, presenter, webhook endpoint or webhook "
    "delivery (for this account), or nothing at this URL",
    "conflict": "the state of the file, of the Idempotency-Key or of the webhook endpoint does "
    "not allow the request",
    "file_not_ready": "a file given to a tool has not been processed yet",
    "idempotency_key_reused": "the Idempotency-Key was used with another body",
    "rate_limited": "over a rate limit",
    "service_unavailable": "the database or the file store did not answer; retry",
    "internal_error": "an unexpected failure",
    "invalid_signature": "the URL's signature is missing, altered or expired",
    "upload_already_received": "the upload URL's file already has its bytes",
    "upload_incomplete": "the body ended before its `Content-Length`",
}
OBJECT_URL_CODES = ("invalid_signature", "upload_already_received", "upload_incomplete")

EXAMPLES = {  # an example message of each code
    MISSING_KEY: "Missing API key: send it as 'Authorization: Bearer <key>'",
    "invalid_api_key": "Invalid API key: the key is unknown, revoked or expired",
    "forbidden": "Account is suspended: contact the operator of this server",
    "watermark_removal_not_allowed": "watermarkMode: NONE needs the account to be allowed "
    "outputs without a watermark; ask the operator (hatchery users flag EMAIL no-watermark), or "
    "send AUTO or VIDEO_GEN",
    "insufficient_credits": "Insufficient balance: this task costs more than the account's "
    "available balance; add funds and try again",
    "invalid_id": "'abc' is not a file id; file ids look like vg_file_...",
    "invalid_parameters": "displayName: Field required",
    "invalid_file_type": "imageStorageFileId: file vg_file_obLD1OX2eJCrEs0071Z4kA is AUDIO, but "
    "an IMAGE file is needed",
    "not_found": "File not found: vg_file_obLD1OX2eJCrEs0071Z4kA",
    "conflict": "File vg_file_obLD1OX2eJCrEs0071Z4kA is still processing; try once it is ready",
    "file_not_ready": "imageStorageFileId: file vg_file_obLD1OX2eJCrEs0071Z4kA is still being "
    "processing; wait until its downloadSource is ready (GET /v1/files/{fileId}), then try again",
    "idempotency_key_reused": "Idempotency-Key 'order-1234' was already used with a different "
    "request body; send the same body to get that task back, or use a new key for a new request",
    "request_timeout": "Request body did not arrive within 10 s",
    "rate_limited": "Rate limit exceeded: per API key on these endpoints 500 per 1 hour; "
    "retry in 1200 s",
    "service_unavailable": "the file store is unavailable (timed out); nothing was changed, try "
    "again shortly",
    "internal_error": "Internal server error; the request was not completed",
    "invalid_signature": "Access denied: the URL has expired; ask for a new one",
    "upload_already_received": "This upload has already been received",
    "upload_incomplete": "The upload ended after 1000 of its 2000 bytes; PUT the whole file again",
    "file_too_large": "The file is larger than this server takes (536870912 bytes, "
    "HATCHERY_MAX_UPLOAD_BYTES)",
}
# What an error body of a code carries besides its message and code.
EXAMPLE_EXTRAS: dict[str, Doc] = {
    "watermark_removal_not_allowed": {
        "requirement": {"type": "purchase_add_on", "details": {"addOn": "production_api"}}
    }
}
# The codes of ``errors.NotAllowed``: the reason each one gives (``api.videogen.requests``).
NOT_ALLOWED = ("watermark_removal_not_allowed",)


class ErrorRequirement(wire.Wire):
    """What the account needs for the request (the contract's `requirement`)."""

    type: str = Field(examples=["purchase_add_on"], description="What kind of requirement.")
    details: dict[str, str] = Field(
        description="What it is, as names and values.", examples=[{"addOn": "production_api"}]
    )


class VideoGenError(wire.Wire):
    """Every error of the VideoGen API and of the object URLs: `message` for people, `code` for
    programs (the HTTP status is the primary signal)."""

    model_config = ConfigDict(json_schema_extra=_not_null("requirement"))

    message: str = Field(description="What went wrong and what to fix, for people.")
    code: str = Field(description="What went wrong (see each answer for its codes).")
    requirement: ErrorRequirement | None = Field(
        default=None,
        description="Only with `watermark_removal_not_allowed`: what the account needs.",
    )


def error_codes() -> list[str]:
    """Every code the VideoGen API and the object URLs answer with: ``errors.NotAllowed`` answers
    with its reason rather than its table code."""
    codes = {code for kind, (_, code) in ANSWERS.items() if kind is not errors.NotAllowed}
    codes |= {MISSING_KEY, "internal_error", *NOT_ALLOWED, *OBJECT_URL_CODES}
    return sorted(codes)


def component_schemas(more: Sequence[type[BaseModel]] = ()) -> Doc:
    """``components.schemas``: the answers (the files', and ``more``), the files' request bodies,
    and what they refer to."""
    files: tuple[type[BaseModel], ...] = (
        GetFilesResponse,
        SearchFilesResponse,
        FileUploadResponse,
        VideoGenError,
    )
    models = (*files, *more)
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=wire.REF)
    schemas: Doc = top["$defs"]
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
    code = schemas["VideoGenError"]["properties"]["code"]
    code["enum"] = error_codes()
    code["description"] += "\n\n" + "\n".join(f"- `{c}`: {ERROR_CODES[c]}" for c in code["enum"])
    schemas["CreateFileUploadRequest"] = _body(
        CreateFileUpload,
        "A new upload. Unknown fields are refused.",
        {
            "displayName": "The file's name: 1 to 512 characters once leading and trailing "
            "white space is removed.",
            "type": "What the bytes must be; omitted, it is read from them. Bytes of another "
            "type fail the file.",
            "isTemporary": "`TEMPORARY` scope: kept at least 24 hours "
            "(`HATCHERY_TEMPORARY_FILE_HOURS`), then its bytes are removed.",
        },
    )
    schemas["SearchFilesRequest"] = _body(
        SearchFiles,
        "A search. Unknown fields are refused.",
        {
            "query": "Words to find in the files' names and descriptions: 1 to 1000 characters "
            "once leading and trailing white space is removed.",
            "numResults": "At most this many results.",
            "selfOnly": "Accepted, and changes nothing: a key sees its own account's files.",
        },
    )
    return schemas


def _body(model: type[Body], description: str, docs: Doc) -> Doc:
    """The server's own request model, with descriptions; its stripped strings must not be
    blank, nor hold a NUL."""
    schema: Doc = model.model_json_schema()
    schema.pop("title", None)
    for name, prop in schema["properties"].items():
        prop.pop("title", None)
        prop["description"] = docs[name]
        if prop.get("type") == "string":
            prop["pattern"] = TEXT
    schema["description"] = description
    return schema


# --------------------------------------------------------------------------- answers


def error(
    causes: dict[str, str],
    *,
    v1: bool = True,
    headers: Doc | None = None,
    message: str | None = None,
) -> Doc:
    """An error answer: ``{"message", "code"}``, its possible codes (as an enum) and what causes
    each (``api.openapi.error``'s equivalent for this body); its example is the first code's,
    with ``message`` if given."""
    lines = [f"- `{code}`: {cause}" for code, cause in causes.items()]
    code = next(iter(causes))
    schema = {
        "allOf": [_ref("schemas", "VideoGenError")],
        "properties": {"code": {"enum": list(causes)}},
    }
    example = {"message": message or EXAMPLES[code], "code": code} | EXAMPLE_EXTRAS.get(code, {})
    return {
        "description": "\n".join(lines),
        "headers": _headers(v1=v1) | (headers or {}),
        "content": {JSON: {"schema": schema, "example": example}},
    }


_INVALID_KEY = (
    "`Invalid Authorization format, expected 'Bearer <token>'`, or the key is unknown, revoked "
    "or expired"
)


def _common_errors() -> dict[str, Doc]:
    """What every files operation can answer besides its own errors."""
    return {
        "401": error({MISSING_KEY: "no `Authorization` header", "invalid_api_key": _INVALID_KEY}),
        "403": error({"forbidden": "the account is suspended"}),
        "429": error(
            {
                "rate_limited": "over the operation's hourly limit per API key (see the "
                "description), the key's own limit (the account's, or the server's default), or "
                "the client IP's; the message says which and when to retry"
            },
            headers={"Retry-After": RETRY_AFTER | {"required": True}},
        ),
        "500": error({"internal_error": "an unexpected failure; nothing half-written is kept"}),
        "503": error(
            {
                "service_unavailable": "the database or the file store did not answer in time; "
                "nothing was changed, retry"
            }
        ),
    }


def _answer(
    description: str, schema: str, examples: Doc | None = None, links: Doc | None = None
) -> Doc:
    media: Doc = {"schema": _ref("schemas", schema)}
    if examples:
        media["examples"] = {name: {"value": value} for name, value in examples.items()}
    answer: Doc = {"description": description, "headers": _headers(), "content": {JSON: media}}
    if links:
        answer["links"] = links
    return answer


_SOURCE = {"status": "ready", "expiresAt": 1778236200}
_SIGNED = "?expires=1778236200&signature=" + "q" * 43
_READY: Doc = {
    "fileId": "vg_file_obLD1OX2eJCrEs0071Z4kA",
    "type": "IMAGE",
    "scope": "GLOBAL",
    "displayName": "A mountain at sunrise",
    "description": None,
    "durationSeconds": None,
    "transcript": None,
    "thumbnailSource": _SOURCE
    | {
        "url": "https://hatchery.example.com/storage/files/vg_file_obLD1OX2eJCrEs0071Z4kA/"
        "thumbnail" + _SIGNED,
        "width": 256,
        "height": 171,
        "fileBytes": 9120,
    },
    "previewSource": _SOURCE
    | {
        "url": "https://hatchery.example.com/storage/files/vg_file_obLD1OX2eJCrEs0071Z4kA/"
        "preview" + _SIGNED,
        "width": 1280,
        "height": 853,
        "fileBytes": 183402,
    },
    "downloadSource": _SOURCE
    | {
        "url": "https://hatchery.example.com/storage/files/vg_file_obLD1OX2eJCrEs0071Z4kA/"
        "original" + _SIGNED,
        "width": 3000,
        "height": 2000,
        "fileBytes": 2483911,
    },
    "hlsSource": None,
    "isPublicPreviewEnabled": False,
    "publicHlsUrl": None,
    "publicPlaybackId": None,
    "status": "ready",
    "error": None,
    "contentType": "image/png",
    "fileBytes": 2483911,
    "createdAt": 1778232600.412,
    "updatedAt": 1778232603.108,
}
_PENDING_SOURCE = {
    "status": "pending",
    "url": None,
    "expiresAt": None,
    "width": None,
    "height": None,
    "fileBytes": None,
}
_UPLOADING: Doc = _READY | {
    "type": None,
    "thumbnailSource": _PENDING_SOURCE,
    "previewSource": _PENDING_SOURCE,
    "downloadSource": _PENDING_SOURCE,
    "status": "uploading",
    "contentType": None,
    "fileBytes": None,
    "updatedAt": 1778232600.412,
}
_PLAYBACK_ID = "vg_play_Zm9vYmFyYmF6cXV4"
EXECUTION_EXAMPLE = "vg_exec_Hk2LmP0qRsT5uVwXyZ1aBc"
_VIDEO: Doc = _READY | {
    "fileId": "vg_file_3pQ9mN2xL7vK1sR8tY4wZa",
    "type": "VIDEO",
    "displayName": "a short clip",
    "durationSeconds": 8.0,
    "contentType": "video/mp4",
    "hlsSource": {
        "status": "ready",
        "url": "https://hatchery.example.com/hls/vg_file_3pQ9mN2xL7vK1sR8tY4wZa/index.m3u8"
        + _SIGNED,
        "expiresAt": 1778236200,
    },
    "isPublicPreviewEnabled": True,
    "publicHlsUrl": f"https://hatchery.example.com/public/{_PLAYBACK_ID}/index.m3u8",
    "publicPlaybackId": _PLAYBACK_ID,
}
_OUTPUT: Doc = _READY | {
    "fileId": "vg_file_Hk2LmP0qRsT5uVwXyZ1aBc",
    "displayName": "A dashboard hero image with glass UI panels",
    "description": "A dashboard hero image with glass UI panels",
    "sourceToolType": "GENERATE_IMAGE",
    "sourceToolExecutionId": EXECUTION_EXAMPLE,
}
FILE_EXAMPLES = {"ready": _READY, "uploading": _UPLOADING}


def _file_answer(description: str, examples: Doc | None = None) -> Doc:
    return _answer(description, "StorageFile", examples or FILE_EXAMPLES)


def _rate(item: RateLimitItem) -> str:
    """``500 requests per hour``, ``10 requests per 2 minutes``."""
    per = item.GRANULARITY.name
    every = per if item.multiples == 1 else f"{item.multiples} {per}s"
    return f"{item.amount:,} requests per {every}"


def _limit(settings: Settings, group: Group, *shared: str) -> str:
    """The group's limit per API key: the contract's (``auth.LIMITS``), or the one
    ``HATCHERY_VIDEOGEN_RATE_LIMITS`` gives it."""
    items = group_limits(settings.videogen_rate_limits)[group]
    together = f", counted together with {' and '.join(shared)}" if shared else ""
    besides = "besides the key's own limit and the client IP's."
    if not items:
        return (
            f"\n\n**Rate limit:** none per API key for this group (`{group.value}`{together}: "
            f"`HATCHERY_VIDEOGEN_RATE_LIMITS` turns it off), {besides}"
        )
    changed = "" if items == group_limits("")[group] else " (`HATCHERY_VIDEOGEN_RATE_LIMITS`)"
    rates = " and ".join(_rate(item) for item in items)
    return (
        f"\n\n**Rate limit:** {rates} per API key (group `{group.value}`{together}){changed}, "
        f"{besides}"
    )


def _operation(
    settings: Settings,
    operation_id: str,
    summary: str,
    description: str,
    group: Group,
    responses: Doc,
    *shared: str,
    tag: str = TAG,
) -> Doc:
    """An operation that takes a key and counts against ``group``'s limit: ``responses``, and
    the errors every such operation can answer (unless ``responses`` says otherwise)."""
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description + _limit(settings, group, *shared),
        "security": SECURITY,
        "responses": dict(sorted((_common_errors() | responses).items())),
    }


def _file_id() -> Doc:
    return {
        "name": "fileId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": FILE_ID},
        "description": "The file's id. Anything else is 400 `invalid_id`; another account's "
        "file, or none, is 404 `not_found`.",
        "example": "vg_file_obLD1OX2eJCrEs0071Z4kA",
    }


_INVALID_ID = {"invalid_id": "`fileId` is not a file id (`vg_file_` and 8 to 40 characters)"}
_NOT_FOUND = {"not_found": "no file with this id is the account's (`File not found: ...`)"}
_CHANGED = "the file changed while the request ran (another request changed it); retry"
_BAD_BODY = (
    "the body is not a JSON object of the request's schema: a field is missing, of the wrong "
    "type or out of range, or unknown; the message names the field (`query: String should have "
    "at least 1 character`). The body is checked before the API key."
)
FILE_LINKS = {
    name: {
        "operationId": operation,
        "parameters": {"fileId": "$response.body#/fileId"},
        "description": description,
    }
    for name, operation, description in (
        ("GetFile", "getStorageFile", "Poll the file until its sources are ready."),
        ("HydrateFile", "hydrateFile", "The file with fresh signed URLs."),
    )
}


def _list_files(settings: Settings) -> Doc:
    operation = _operation(
        settings,
        "listFiles",
        "List files",
        "The account's files that are not archived, most recently updated first, by cursor "
        "(the contract's G2 pagination). Without `limit` and `cursor`, every file in one answer, "
        "as G1 gives them; with a `cursor` and no `limit`, pages of 50.",
        Group.FILES_READ,
        {
            "200": _answer(
                "A page of files.",
                "GetFilesResponse",
                {
                    "page": {
                        "files": [_READY, _OUTPUT],
                        "hasMore": True,
                        "nextCursor": "dmdmMS4xNzc4MjMyNjAzMTA4MDAwLjQy",
                    },
                    "last": {"files": [_UPLOADING], "hasMore": False, "nextCursor": None},
                },
            ),
            "400": error(
                {
                    "invalid_parameters": "`limit` not a whole number from 1 to 200, or a "
                    "`cursor` this server did not give out"
                }
            ),
        },
        "`GET /v1/files/{fileId}`",
    )
    operation["parameters"] = [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
            "description": "Files per page (50 when only `cursor` is given; without either, "
            "all of them). Anything but a whole number from 1 to 200 is 400 "
            "`invalid_parameters`.",
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": FILES_CURSOR},
            "description": "Where the page starts: `nextCursor` of the previous page, passed back "
            "unchanged (with any `limit`). A cursor this server did not give out is 400 "
            "`invalid_parameters`.",
            "example": "dmdmMS4xNzc4MjMyNjAzMTA4MDAwLjQy",
        },
    ]
    return operation


def _search_files(settings: Settings) -> Doc:
    operation = _operation(
        settings,
        "searchFiles",
        "Search files",
        "Files whose display name or description contains the query's words, as word prefixes: "
        "**lexical, not semantic** (the database's full-text index). `similarity` is the share "
        "of the query's distinct words a file contains (`1.0` when it has all of them); results "
        "are ordered by it. Only `ready` files that are not archived and not `TEMPORARY` are "
        "searched; a task's output is found by its prompt.",
        Group.FILES_SEARCH,
        {
            "200": _answer(
                "The matching files, most similar first (`[]` when none).",
                "SearchFilesResponse",
                {"found": {"results": [{"similarity": 1.0, "file": _OUTPUT}]}},
            ),
            "400": error({"invalid_parameters": _BAD_BODY}),
        },
    )
    operation["requestBody"] = {
        "required": True,
        "content": {
            JSON: {
                "schema": _ref("schemas", "SearchFilesRequest"),
                "examples": {"search": {"value": {"query": "dashboard glass", "numResults": 5}}},
            }
        },
    }
    return operation


def _create_upload(settings: Settings) -> Doc:
    minutes = settings.upload_url_seconds / 60
    operation = _operation(
        settings,
        "createFileUpload",
        "Create a file upload",
        "Creates a file waiting for its bytes (`uploading`) and answers with a signed URL to "
        f"`PUT` them to, without a key, within {minutes:g} minutes (`HATCHERY_UPLOAD_URL_SECONDS`"
        f"), at most {settings.max_upload_bytes} bytes (`HATCHERY_MAX_UPLOAD_BYTES`). A worker "
        "then reads what the bytes are (images PNG, JPEG, WebP, GIF, SVG; video MP4, WebM, MOV; "
        "audio MP3, WAV, M4A, OGG, FLAC) and makes the renditions: poll `GET "
        "/v1/files/{fileId}` until `downloadSource.status` is `ready`. A file whose bytes never "
        "arrive fails when its URL expires.",
        Group.FILES_UPLOAD,
        {
            "200": _answer(
                "The new file's id and its upload URL.",
                "FileUploadResponse",
                {
                    "created": {
                        "fileId": "vg_file_obLD1OX2eJCrEs0071Z4kA",
                        "uploadUrl": "https://hatchery.example.com/storage/uploads/"
                        "vg_file_obLD1OX2eJCrEs0071Z4kA" + _SIGNED,
                    }
                },
                links=FILE_LINKS,
            ),
            "400": error({"invalid_parameters": _BAD_BODY}),
        },
    )
    operation["requestBody"] = {
        "required": True,
        "content": {
            JSON: {
                "schema": _ref("schemas", "CreateFileUploadRequest"),
                "examples": {
                    "upload": {
                        "value": {"displayName": "My photo", "type": "IMAGE", "isTemporary": False}
                    }
                },
            }
        },
    }
    return operation


def _by_id(
    settings: Settings,
    operation_id: str,
    summary: str,
    description: str,
    group: Group,
    answer: Doc,
    problems: Doc,
    *shared: str,
) -> Doc:
    responses = {"200": answer, "400": error(_INVALID_ID), "404": error(_NOT_FOUND)} | problems
    operation = _operation(settings, operation_id, summary, description, group, responses, *shared)
    operation["parameters"] = [_file_id()]
    return operation


def _file_operations(settings: Settings) -> dict[str, Doc]:
    ttl = settings.signed_url_seconds
    get = _by_id(
        settings,
        "getStorageFile",
        "Get a file",
        f"The account's file (archived ones too), with fresh signed URLs (valid {ttl} s, "
        "`HATCHERY_SIGNED_URL_SECONDS`) in every source that is ready.",
        Group.FILES_READ,
        _file_answer("The file."),
        {},
        "`GET /v1/files`",
    )
    hydrate = _by_id(
        settings,
        "hydrateFile",
        "Hydrate a file",
        f"The file with fresh signed URLs (valid {ttl} s) in every source that is ready: the "
        "same answer as `GET /v1/files/{fileId}`. No body.",
        Group.FILES_HYDRATE,
        _file_answer("The file, hydrated."),
        {},
    )
    archive = _by_id(
        settings,
        "archiveFile",
        "Archive a file",
        "The file leaves `GET /v1/files` and search for good (there is no unarchive); it can "
        "still be read by id and its URLs keep working. Archiving an archived file changes "
        "nothing. No body.",
        Group.FILES_CHANGE,
        _file_answer("The file, archived."),
        {"409": error({"conflict": _CHANGED})},
        "the public preview operations",
    )
    enable = _by_id(
        settings,
        "enablePublicPreview",
        "Enable a file's public preview",
        "Video and audio files only. Gives the file a playback id (`publicPlaybackId`, "
        "`vg_play_...`) and `publicHlsUrl`, which plays without a key once a worker has made the "
        "HLS stream (the file is `processing` meanwhile; poll it until `hlsSource` is `ready`). "
        "Enabling it again changes nothing. No body. (An endpoint the contract's rate-limit "
        "table leaves out.)",
        Group.FILES_CHANGE,
        _file_answer("The file, with its playback id.", {"enabled": _VIDEO}),
        {
            "400": error(
                _INVALID_ID
                | {
                    "invalid_parameters": "the file is an image, or failed (`Public preview is "
                    "for video and audio files; this is an image`)"
                }
            ),
            "409": error(
                {
                    "conflict": "the file is still being processed (`File vg_file_... is still "
                    "processing; try once it is ready`); or it changed while the request ran"
                }
            ),
        },
        "`archive` and `disable-public-preview`",
    )
    disable = _by_id(
        settings,
        "disablePublicPreview",
        "Disable a file's public preview",
        "Removes the playback id: the public URLs answer 404 at once; signed URLs keep working "
        "until they expire. Enabling it again gives a new playback id. No body.",
        Group.FILES_CHANGE,
        _file_answer("The file, without a playback id."),
        {"409": error({"conflict": _CHANGED})},
        "`archive` and `enable-public-preview`",
    )
    return {
        "/v1/files/{fileId}": {"get": get},
        "/v1/files/{fileId}/hydrate": {"post": hydrate},
        "/v1/files/{fileId}/archive": {"post": archive},
        "/v1/files/{fileId}/enable-public-preview": {"post": enable},
        "/v1/files/{fileId}/disable-public-preview": {"post": disable},
    }


def files_paths(settings: Settings) -> dict[str, Doc]:
    """The files operations of the VideoGen API (``api.videogen.files``)."""
    return {
        "/v1/files": {"get": _list_files(settings)},
        "/v1/files/search": {"post": _search_files(settings)},
        "/v1/files/upload": {"post": _create_upload(settings)},
    } | _file_operations(settings)


# --------------------------------------------------------------------------- object URLs


def _path(name: str, pattern: str, description: str, example: str) -> Doc:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
        "description": description,
        "example": example,
    }


def _signed(description: str) -> list[Doc]:
    """The query of a signed URL (``storage.local.UrlSigner``)."""
    return [
        {
            "name": "expires",
            "in": "query",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
            "description": f"When the URL stops working, in Unix seconds. {description}",
            "example": 1778236200,
        },
        {
            "name": "signature",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "pattern": SIGNATURE},
            "description": "The URL's HMAC-SHA256 (over the method, the object and `expires`, "
            "and `type` when there is one), base64url.",
        },
    ]


def _object_error(status: str) -> dict[str, Doc]:
    causes = {
        "403": {
            "invalid_signature": "the signature is missing or does not match (the URL was "
            "changed), or the URL has expired"
        },
        "404": {"not_found": "no such object, or the file store is not local"},
        "503": {"service_unavailable": "the file store did not answer; retry"},
    }[status]
    return {status: error(causes, v1=False)}


def _plain_headers(**headers: str) -> Doc:
    """X-Request-ID and ``headers`` (name: description), for an answer of an object URL."""
    return _headers(v1=False) | {
        name.replace("_", "-"): {"description": text, "schema": {"type": "string"}}
        for name, text in headers.items()
    }


def _without_body(answer: Doc) -> Doc:
    return {name: value for name, value in answer.items() if name != "content"}


_NOT_PUBLIC = (
    "no file has this playback id (or its public preview was disabled), or its stream is not "
    "made yet"
)
_PRIVATE = "`private`."


def _download() -> tuple[Doc, Doc]:
    range_header = {
        "name": "Range",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "`bytes=start-end` (RFC 9110), so a player can seek.",
        "example": "bytes=0-1023",
    }
    type_query = {
        "name": "type",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "The content type to serve the object as (signed with the URL).",
        "example": "image/png",
    }
    whole = {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}
    plain = {"text/plain": {"schema": {"type": "string"}}}
    responses: Doc = {
        "200": {
            "description": "The object, as `type` (else `application/octet-stream`).",
            "headers": _plain_headers(Cache_Control=_PRIVATE, Accept_Ranges="`bytes`."),
            "content": whole,
        },
        "206": {
            "description": "The requested range (`Content-Range`); several ranges are "
            "`multipart/byteranges`.",
            "headers": _plain_headers(
                Cache_Control=_PRIVATE, Content_Range="`bytes start-end/size`."
            ),
            "content": whole,
        },
        "400": {
            "description": "A `Range` header that is not `bytes=...` (plain text, from the HTTP "
            "layer).",
            "headers": _headers(v1=False),
            "content": plain,
        },
        **_object_error("403"),
        **_object_error("404"),
        "416": {
            "description": "A range outside the object (plain text, from the HTTP layer); "
            "`Content-Range: bytes */<size>`.",
            "headers": _plain_headers(Content_Range="`bytes */size`."),
            "content": plain,
        },
    }
    get = {
        "operationId": "getSignedObject",
        "tags": [OBJECT_TAG],
        "summary": "A signed download URL",
        "description": "A file's source, at the signed URL its `url` gives (local file store; "
        "an S3-compatible store signs its own). No key: the signature is the authority. Range "
        "requests are served.",
        "security": [],
        "parameters": [
            _path(
                "key",
                OBJECT_KEY,
                "The object's key: `/`-separated, as the signed URL has it.",
                "files/vg_file_obLD1OX2eJCrEs0071Z4kA/original",
            ),
            *_signed("An expired URL is 403 `invalid_signature`."),
            type_query,
            range_header,
        ],
        "responses": responses,
    }
    head = get | {
        "operationId": "headSignedObject",
        "summary": "A signed download URL's headers",
        "description": "What `GET` answers, without the body. A `GET` URL works for `HEAD`.",
        "responses": {status: _without_body(answer) for status, answer in responses.items()},
    }
    return get, head


def _upload(settings: Settings) -> Doc:
    return {
        "operationId": "putFileUpload",
        "tags": [OBJECT_TAG],
        "summary": "Upload a file's bytes",
        "description": "The `uploadUrl` of `POST /v1/files/upload` (local file store; on an "
        "S3-compatible store the URL is the store's own). The body is the file's raw bytes, any "
        f"or no `Content-Type`, at most {settings.max_upload_bytes} bytes. Once they are "
        "stored, the file moves to `processing`. A refused upload stores nothing. No key: the "
        "signature is the authority.",
        "security": [],
        "parameters": [
            _path(
                "file_id",
                FILE_ID,
                "The file the URL was made for.",
                "vg_file_obLD1OX2eJCrEs0071Z4kA",
            ),
            *_signed(
                f"The URL works {settings.upload_url_seconds} s (`HATCHERY_UPLOAD_URL_SECONDS`); "
                "an expired one is 403 `invalid_signature`."
            ),
        ],
        "requestBody": {
            "required": False,
            "description": "The file's bytes.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        "responses": {
            "200": {"description": "The bytes are stored.", "headers": _headers(v1=False)},
            "400": error(
                {
                    "upload_incomplete": "the body ended before its `Content-Length`, or the "
                    "client went away"
                },
                v1=False,
            ),
            **_object_error("403"),
            "404": error({"not_found": "the URL's file no longer exists"}, v1=False),
            "409": error(
                {
                    "upload_already_received": "the file already has its bytes (a second `PUT`)"
                    "; the first upload stands"
                },
                v1=False,
            ),
            "413": error(
                {
                    "file_too_large": f"the body is over {settings.max_upload_bytes} bytes; "
                    "nothing is stored and the URL still takes a smaller file"
                },
                v1=False,
            ),
            **_object_error("503"),
        },
    }


def _stream(
    operation_id: str, summary: str, description: str, parameters: list[Doc], responses: Doc
) -> Doc:
    return {
        "operationId": operation_id,
        "tags": [OBJECT_TAG],
        "summary": summary,
        "description": description,
        "security": [],
        "parameters": parameters,
        "responses": responses,
    }


PLAYLIST = "application/vnd.apple.mpegurl"
_PLAYLIST_EXAMPLE = (
    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000000,\n"
    f"https://hatchery.example.com/public/{_PLAYBACK_ID}/segment000.ts\n#EXT-X-ENDLIST\n"
)


def _playlist_answer(description: str, headers: Doc) -> Doc:
    return {
        "description": description,
        "headers": headers,
        "content": {PLAYLIST: {"schema": {"type": "string"}, "example": _PLAYLIST_EXAMPLE}},
    }


def _playback_id() -> Doc:
    return _path(
        "playbackId",
        PLAYBACK_ID,
        "The file's `publicPlaybackId`. Anything else is 404 `not_found`.",
        _PLAYBACK_ID,
    )


def _streaming(settings: Settings) -> dict[str, Doc]:
    not_public = {
        "404": error({"not_found": _NOT_PUBLIC}, v1=False),
        "503": error(
            {"service_unavailable": "the database or the file store did not answer; retry"},
            v1=False,
        ),
    }
    public = _stream(
        "getPublicPlaylist",
        "A public stream's playlist",
        "`publicHlsUrl`: the HLS playlist of a file with public preview, its segments as "
        "`/public/{playbackId}/{segment}` URLs. No key, no expiry, CORS open.",
        [_playback_id()],
        {
            "200": _playlist_answer(
                "The playlist.",
                _plain_headers(
                    Access_Control_Allow_Origin="`*`.", Cache_Control="`public, max-age=60`."
                ),
            )
        }
        | not_public,
    )
    segment = _stream(
        "getPublicSegment",
        "A public stream's segment",
        "A segment of a public stream: the bytes (local file store) or a redirect to a "
        "presigned URL (S3-compatible store). No key, CORS open.",
        [
            _playback_id(),
            _path(
                "segment",
                SEGMENT,
                "The segment's name, as the playlist has it. Anything else is 404 `not_found`.",
                "segment000.ts",
            ),
        ],
        {
            "200": {
                "description": "The segment (MPEG-TS).",
                "headers": _plain_headers(
                    Access_Control_Allow_Origin="`*`.",
                    Cache_Control="`public, max-age=31536000, immutable`.",
                ),
                "content": {"video/mp2t": {"schema": {"type": "string"}}},
            },
            "302": {
                "description": "To a presigned URL of the segment (S3-compatible store).",
                "headers": _plain_headers(
                    Location="The presigned URL.", Cache_Control="`public, max-age=300`."
                ),
            },
        }
        | not_public,
    )
    private = _stream(
        "getPrivatePlaylist",
        "A private stream's playlist",
        "`hlsSource.url`: the HLS playlist of a file's stream, its segments signed URLs of "
        f"their own. No key: the signature is the authority (valid {settings.signed_url_seconds} "
        "s, `HATCHERY_SIGNED_URL_SECONDS`).",
        [
            _path(
                "fileId",
                FILE_ID,
                "The file's id; anything else is 403 `invalid_signature`.",
                "vg_file_3pQ9mN2xL7vK1sR8tY4wZa",
            ),
            *_signed("An expired URL is 403 `invalid_signature`."),
        ],
        {
            "200": _playlist_answer("The playlist.", _plain_headers(Cache_Control=_PRIVATE)),
            **_object_error("403"),
            "404": error({"not_found": "the file has no stream (yet)"}, v1=False),
            **_object_error("503"),
        },
    )
    embed = _stream(
        "getEmbedPage",
        "A public stream's player page",
        "A page that plays the file's public stream (hls.js, served by this server; browsers "
        "that play HLS natively use their own), to put in an `<iframe>`. No key.",
        [_playback_id()],
        {
            "200": {
                "description": "The page.",
                "headers": _headers(v1=False),
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        }
        | not_public,
    )
    player = _stream(
        "getPlayerScript",
        "The player's script",
        "hls.js, vendored with the server (no CDN), for the player page.",
        [],
        {
            "200": {
                "description": "The script (cacheable for a day).",
                "headers": _plain_headers(Cache_Control="`public, max-age=86400`."),
                "content": {"text/javascript": {"schema": {"type": "string"}}},
            }
        },
    )
    return {
        "/public/{playbackId}/index.m3u8": {"get": public},
        "/public/{playbackId}/{segment}": {"get": segment},
        "/hls/{fileId}/index.m3u8": {"get": private},
        "/embed/{playbackId}": {"get": embed},
        "/embed/player/hls.min.js": {"get": player},
    }


def object_paths(settings: Settings) -> dict[str, Doc]:
    """The object URLs (``api.storage``, ``api.videogen.playback``): public, signed or not."""
    get, head = _download()
    return {
        "/storage/{key}": {"get": get, "head": head},
        "/storage/uploads/{file_id}": {"put": _upload(settings)},
    } | _streaming(settings)


TAGS = (
    (
        TAG,
        "The VideoGen API's files (wire-compatible with the VideoGen API): uploads, lists, "
        'search, hydration, archive and public preview. Errors are `{"message", "code"}`.',
    ),
    (
        TOOLS_TAG,
        "The VideoGen API's tools and their executions: run a tool (answered 202 at once), then "
        "poll the execution, stream its status changes, cancel it, or list them.",
    ),
    (
        RESOURCES_TAG,
        "The VideoGen API's resources: the text-to-speech voices and the avatar presenters.",
    ),
    (
        WEBHOOKS_TAG,
        "The VideoGen API's webhook endpoints (contract §5): register a URL for the events it "
        "wants, list them, delete one. And Hatchery's own: get or enable one, send it a test "
        "event, the delivery log of every message and its attempts, and redelivery. The events, "
        "their payloads, their Standard Webhooks signature and retries: `POST "
        "/v1/webhooks/endpoints`.",
    ),
)


def document(settings: Settings, catalog: Catalog | None = None) -> Doc:
    """The VideoGen operations and the object URLs (``paths``), and the schemas they add to
    ``components``, for ``api.openapi.openapi_document``; with the ``catalog``, each tool's price
    is in its description."""
    # The tools' and webhooks' parts build on this module's helpers: imported once it is loaded.
    from hatchery.api.videogen import openapi_tools as tools
    from hatchery.api.videogen import openapi_webhooks as hooks

    dialect = files_paths(settings) | tools.paths(settings, catalog) | hooks.paths(settings)
    requests = tools.request_schemas(settings) | hooks.request_schemas(settings)
    return {
        "paths": dialect | object_paths(settings),
        "components": {"schemas": component_schemas((*tools.ANSWERS, *hooks.ANSWERS)) | requests},
    }
