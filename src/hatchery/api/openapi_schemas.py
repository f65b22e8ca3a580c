"""The OpenAPI document's component schemas: the wire shapes of the API's answers as Pydantic
models, and the patterns of the strings the API reads and writes. They describe the API
(``api.openapi``); nothing validates requests or answers against them at run time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"

TASK_ID = r"^gen_[a-z0-9]{12,64}$"
COST = r"^\$(0\.00|[0-9]+\.[0-9]{4})$"  # "$0.00" while zero, else four decimals
BALANCE = r"^-?\$[0-9]+\.[0-9]{4}$"

Status = Literal["pending", "processing", "completed", "failed", "cancelled"]
TaskTypeName = Literal["image_generate", "image_edit", "video_generate"]
CHARGED_ID = r"^(gen_[a-z0-9]{12,64}|vg_exec_[A-Za-z0-9_-]{8,64})$"  # a task's or an execution's
Resolution = Literal["1k", "2k", "4k"]
ErrorCode = Literal[
    "BAD_REQUEST",
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "INSUFFICIENT_BALANCE",
    "NOT_FOUND",
    "CONFLICT",
    "IDEMPOTENCY_MISMATCH",
    "RATE_LIMITED",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
]

# Webhook messages: a delivery's id (``domain.keys.new_id("whd_")``), a message's (its
# ``webhook-id`` header, ``domain.webhooks.new_message_id``; one queued before migration 0010 has
# its delivery's id), a registered endpoint's (``domain.webhooks.is_endpoint_id``).
DELIVERY_ID = r"^whd_[a-z0-9]{20}$"
MESSAGE_ID = r"^(?:msg_[A-Za-z0-9_-]{24}|whd_[a-z0-9]{20})$"
ENDPOINT_ID = r"^ep_[A-Za-z0-9_-]{8,40}$"
DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]  # store.outbox
TaskEvent = Literal["task.completed", "task.failed", "task.cancelled"]  # domain.webhooks

Cost = Annotated[str, Field(pattern=COST, examples=["$0.0100"])]
Dollars = Annotated[str, Field(pattern=BALANCE, examples=["$9.9900"])]
Count = Annotated[int, Field(ge=0)]


# --------------------------------------------------------------------------- regular expressions
# Written to accept exactly what the server accepts, so that a client (or a fuzzer) can tell a
# request the server takes from one it refuses by the document alone.


def _alternatives(*options: str) -> str:
    return "(?:" + "|".join(options) + ")"


_OCTET = _alternatives("25[0-5]", "2[0-4][0-9]", "1[0-9]{2}", "[1-9]?[0-9]")
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = _alternatives(f"{_H16}:{_H16}", _IPV4)
_IPV6 = _alternatives(  # RFC 3986, section 3.2.2
    f"(?:{_H16}:){{6}}{_LS32}",
    f"::(?:{_H16}:){{5}}{_LS32}",
    f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    f"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
)
# A host name of letters, digits, '.', '-', '_'; four dot-separated numbers are an IPv4 address.
_NAME = r"(?![0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(?:[:/?#]|$))[A-Za-z0-9._-]+"
_PORT = "(?::" + _alternatives(
    "0*[1-9][0-9]{0,3}", "0*[1-5][0-9]{4}", "0*6[0-4][0-9]{3}", "0*65[0-4][0-9]{2}",
    "0*655[0-2][0-9]", "0*6553[0-5]",
) + "?)?"  # fmt: skip
_HOST = _alternatives(_IPV4, _NAME, r"\[" + _IPV6 + r"\]")
URL = rf"^[Hh][Tt][Tt][Pp][Ss]?://@?{_HOST}{_PORT}(?:[/?#][^\x00-\x1f\x7f]*)?$"
"""An http(s) URL as ``net.guard.check_url_syntax`` takes it: a host (a name, an IPv4 address or
an IPv6 one in brackets), a port from 1 to 65535, no credentials, no ASCII control characters.
(The server also takes internationalised host names, which this leaves out.)"""

# ``Prefer``, as ``api.watch.requested_wait`` reads it: preferences separated by commas, each
# ``name[=value][;parameters]``; ``wait`` (any case, spaces around it) must have a whole number of
# seconds from 0 to 60 as its value, optionally in quotes; anything else is ignored.
_WS = r"[\t\x0b\x0c \x1c-\x1f\x85\xa0]"  # what Python's str.strip() removes (of Latin-1)
_WAIT_VALUE = rf'{_WS}*"*0*(?:[0-9]|[1-5][0-9]|60)"*{_WS}*(?:[;,]|$)'
_BAD_WAIT = rf"{_WS}*[Ww][Aa][Ii][Tt]{_WS}*(?:=(?!{_WAIT_VALUE})[^,;]*)?(?:;[^,]*)?(?:,|$)"
PREFER = rf"^(?!(?:[^,]*,)*{_BAD_WAIT})"

IDEMPOTENCY_KEY = r"^[ -~]{1,255}$"
LAST_EVENT_ID = rf"^{_WS}*[0-9]{{0,18}}{_WS}*$"

# A cursor is base64url (unpadded) of "t1." and the digits of a position ("dDEu" is "t1.").
_DIGIT_PAIR_HEAD = "(?:[MN][DTjz]|O[DT])"  # the first two characters of three digits' encoding
_THREE_DIGITS = f"{_DIGIT_PAIR_HEAD}[AEIMQUYcgk][w-z0-5]"
_TAIL = _alternatives("[MN][AQgw]|O[AQ]", f"{_DIGIT_PAIR_HEAD}[AEIMQUYcgk]")  # 1 or 2 digits
# "t1." and 1 to 18 digits (``api.cursor.MAX_DIGITS``), base64url without padding
CURSOR = rf"^dDEu(?:(?:{_THREE_DIGITS}){{0,5}}{_TAIL}|(?:{_THREE_DIGITS}){{1,6}})$"


# --------------------------------------------------------------------------- models


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


def _video_only(schema: dict[str, Any]) -> None:
    """``duration_seconds`` and ``resolution`` are not always there: no default, not required."""
    schema["required"] = [name for name in schema["required"] if name in ("url", "urls")]
    for name in ("duration_seconds", "resolution"):
        schema["properties"][name].pop("default", None)


class TaskOutput(Wire):
    """What a completed task made. Output files are served at unguessable URLs under the server's
    public URL (``GET /files/{token}/{name}``)."""

    model_config = ConfigDict(json_schema_extra=_video_only)

    url: str | None = Field(description="The first file's URL (`urls[0]`); null if none.")
    urls: list[str] = Field(description="Every output file's URL, in order.")
    resolution: Resolution = Field(
        default="1k",
        description="The size actually made: it may differ from the one requested when no "
        "configured provider of the model makes that size (the nearest one is made). Absent on "
        "outputs made by servers older than 0.2.",
    )
    duration_seconds: int = Field(
        default=0, ge=1, description="Video tasks only: the video's length in seconds."
    )


class Task(Wire):
    """A generation task. `output` is set once it has completed; `error` once it has failed (a
    failed task is still a 200 answer: the lookup succeeded)."""

    id: str = Field(pattern=TASK_ID, examples=["gen_abc123def456"])
    status: Status = Field(
        description="`pending` (queued) -> `processing` (a worker has it) -> `completed`, "
        "`failed` or `cancelled` (terminal: the task never changes again)."
    )
    model: str = Field(examples=["nanobanana"])
    type: TaskTypeName = Field(
        description="`image_edit` for an image request with a non-empty `image_urls`."
    )
    output: TaskOutput | None
    error: str | None = Field(
        description="Why the task failed; null otherwise.",
        examples=["generation failed: upstream provider unavailable"],
    )
    cost: Cost = Field(description='What the task was charged: "$0.00" until it completes.')
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class TaskPagination(Wire):
    page: int | None = Field(ge=1, description="Null on a page reached by `cursor`.")
    per_page: int = Field(ge=1, le=100)
    total: Count
    total_pages: Count
    cursor: str | None = Field(
        pattern=CURSOR,
        description="Where the next page starts (null on the last page): pass it back unchanged "
        "as `?cursor=`.",
    )


class TaskPage(Wire):
    items: list[Task] = Field(description="Newest first.")
    pagination: TaskPagination


class Pagination(Wire):
    page: int = Field(ge=1)
    per_page: int = Field(ge=1, le=100)
    total: Count
    total_pages: Count


class UsageRecord(Wire):
    """The charge of one completed task, or of one VideoGen tool execution (``type`` ``tool``,
    ``model`` the tool's name): the account's money is one."""

    id: str = Field(pattern=r"^usage_[A-Za-z0-9_-]{12,80}$", examples=["usage_abc123def456"])
    task_id: str = Field(pattern=CHARGED_ID, examples=["gen_abc123def456"])
    model: str = Field(examples=["nanobanana"])
    type: TaskTypeName | Literal["tool"]
    units: Count = Field(
        description="Output images, or seconds of video (times outputs); for a tool, outputs, "
        "seconds or characters of text (times outputs)."
    )
    unit: Literal["image", "second", "output", "character"]
    unit_price: Cost
    cost: Cost = Field(description="`units` times `unit_price`.")
    resolution: Resolution | None = Field(description="The image or video size made.")
    api_key: str | None = Field(
        description="The prefix of the API key that submitted the task.",
        examples=["hk_AbCdEf1234"],
    )
    created_at: datetime


class UsagePage(Wire):
    items: list[UsageRecord] = Field(description="Newest first.")
    pagination: Pagination


class ModelUsage(Wire):
    model: str = Field(examples=["nanobanana"])
    total_units: Count
    total_cost: Cost
    request_count: Count


class AccountUsage(Wire):
    request_count: Count
    total_units: Count
    total_cost: Cost


class Account(Wire):
    id: str = Field(examples=["acct_k3v9x0q2m8a1b7c4d5e6"])
    email: str = Field(examples=["local@localhost"])
    status: Literal["active"] = Field(description="A suspended account gets 403 FORBIDDEN.")
    balance: Dollars = Field(description="What is left after charges.")
    reserved: Dollars = Field(description="Held by tasks not yet finished.")
    available: Dollars = Field(description="What new tasks can spend: balance - reserved.")
    api_key: str | None = Field(
        description="The key prefix `usage` is narrowed to (`?api_key=`); null for the account.",
        examples=["hk_AbCdEf1234"],
    )
    usage: AccountUsage = Field(description="Completed (charged) tasks.")


class Health(Wire):
    status: Literal["ok"]


class TaskWebhookAttempt(Wire):
    """One attempt to send a message."""

    attempt: int = Field(ge=1, description="1 for the first; a redelivery's go on counting.")
    attempted_at: datetime
    duration_ms: Count = Field(description="Until the answer came, or the attempt failed.")
    status_code: int | None = Field(
        description="The receiver's HTTP status; null when it did not answer (`error` says why)."
    )
    response: str | None = Field(
        description="The start of the receiver's answer (at most 1024 bytes, as UTF-8 text); "
        "null when none was read."
    )
    error: str | None = Field(
        description="Why the attempt failed (`HTTP 500`, a timeout, a refused address); null "
        "when it succeeded (any 2xx).",
        examples=["HTTP 503"],
    )


class TaskWebhook(Wire):
    """One message of the task's end to one receiver: its `webhook_url`, or an endpoint of the
    account's registered with the VideoGen API that subscribes to the event."""

    id: str = Field(pattern=DELIVERY_ID, examples=["whd_k3v9x0q2m8a1b7c4d5e6"])
    webhook_id: str = Field(
        pattern=MESSAGE_ID,
        description="The message's `webhook-id` header: the same on every attempt and every "
        "receiver of the event.",
        examples=["msg_2ZKuO0hJjzY7XbB6cN1qWf4r"],
    )
    event: TaskEvent
    url: str = Field(description="Where it is sent.")
    endpoint_id: str | None = Field(
        pattern=ENDPOINT_ID, description="The registered endpoint's id; null for `webhook_url`."
    )
    status: DeliveryStatus = Field(
        description="`pending` (waiting for its next attempt), `delivered` (a 2xx), `failed` "
        "(its retries ran out, or its URL was refused) or `cancelled` (its endpoint was "
        "deleted or disabled first)."
    )
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="While `pending`: when it is tried.")
    delivered_at: datetime | None = Field(description="When the attempt that got a 2xx began.")
    attempts: list[TaskWebhookAttempt] = Field(description="Every attempt made, oldest first.")


class TaskWebhooks(Wire):
    items: list[TaskWebhook] = Field(description="Newest first, at most 200.")


class Error(Wire):
    code: ErrorCode
    message: str = Field(description="What went wrong and what to fix, for people.")


def _envelope(name: str, data: Any, doc: str) -> type[BaseModel]:
    from pydantic import create_model

    model: type[BaseModel] = create_model(
        name, __base__=Wire, __doc__=doc, data=(data, ...), error=(None, ...)
    )
    return model


TaskResponse = _envelope("TaskResponse", Task, "A task.")
TaskPageResponse = _envelope("TaskPageResponse", TaskPage, "A page of tasks.")
UsagePageResponse = _envelope("UsagePageResponse", UsagePage, "A page of usage records.")
UsageSummaryResponse = _envelope(
    "UsageSummaryResponse", list[ModelUsage], "Usage summed per model, sorted by model."
)
AccountResponse = _envelope("AccountResponse", Account, "The account.")
HealthResponse = _envelope("HealthResponse", Health, "The server and its database answer.")
TaskWebhooksResponse = _envelope(
    "TaskWebhooksResponse", TaskWebhooks, "The messages of a task's end, with their attempts."
)
TaskWebhookResponse = _envelope("TaskWebhookResponse", TaskWebhook, "A message of a task's end.")


class ErrorResponse(Wire):
    """Every error: `data` is null and `error` says what went wrong."""

    data: None
    error: Error


RESPONSES = (
    TaskResponse,
    TaskPageResponse,
    UsagePageResponse,
    UsageSummaryResponse,
    AccountResponse,
    HealthResponse,
    TaskWebhooksResponse,
    TaskWebhookResponse,
    ErrorResponse,
)


def component_schemas() -> dict[str, Any]:
    """``components.schemas``: the answers' envelopes and everything they refer to."""
    _, top = models_json_schema([(m, "serialization") for m in RESPONSES], ref_template=REF)
    schemas: dict[str, Any] = top["$defs"]
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)  # Pydantic's, made from the field's name: noise
    return schemas
