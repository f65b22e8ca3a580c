"""The VideoGen API's webhooks in the OpenAPI document (contract §5; ``api.videogen.webhooks``),
for ``api.videogen.openapi``, whose helpers and schemas it builds on: the registry the contract
gives (create, list, delete) and what Hatchery adds to it (one endpoint, enabling one the server
disabled, a test event, the delivery log and redelivery), and how messages are sent, signed and
retried (``webhooks.delivery``, ``webhooks.signing``, ``api.videogen.hooks``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from pydantic import BaseModel, Field

from hatchery.api import openapi_schemas as wire
from hatchery.api.openapi import JSON, Doc, _headers, _ref, retried
from hatchery.api.videogen.auth import Group
from hatchery.api.videogen.openapi import (
    EXECUTION_EXAMPLE,
    FILE_ID,
    WEBHOOKS_TAG,
    _answer,
    _body,
    _operation,
    _path,
    error,
)
from hatchery.api.videogen.openapi_tools import EXECUTION_ID, EXECUTIONS_CURSOR, STRIPPED, _query
from hatchery.api.videogen.schemas import CreateWebhookEndpoint
from hatchery.api.videogen.webhooks import URL_CHECK_TIMEOUT
from hatchery.domain.webhooks import MAX_ENDPOINTS, Schedule, parse_schedule
from hatchery.settings import Settings

ENDPOINT_ID = wire.ENDPOINT_ID
# GET /v1/webhooks/deliveries's cursor is the executions' (``openapi_tools.EXECUTIONS_CURSOR``) of
# another kind: "vgw1." rather than "vge1." (``api.videogen.webhooks.CURSOR``), whose first three
# bytes encode as "dmd3" rather than "dmdl".
DELIVERIES_CURSOR = EXECUTIONS_CURSOR.replace("^dmdl", "^dmd3", 1)
SECRET = r"^whsec_[A-Za-z0-9+/]{48}$"  # domain.webhooks.new_endpoint_secret: 36 bytes, base64
_HTTPS = wire.URL.replace("[Ss]?", "[Ss]", 1)  # the URL syntax, https only


def stripped_at_most(length: int) -> str:
    """The start of a string's pattern whose length the server checks once the white space
    around it is stripped (``api.videogen.schemas.Body``), as ``maxLength`` cannot say: that
    white space, then a lookahead that at most ``length`` characters are left, none a NUL
    (``api.videogen.schemas.TextBody``)."""
    return f"^{STRIPPED}*(?=[^\\u0000]{{0,{length}}}{STRIPPED}*$)"


def receiver_url(allow_private: bool) -> str:
    """A registered endpoint's URL as the server reads it: white space around it stripped, at
    most 2048 characters, the syntax of ``net.guard.check_receiver_url`` (https; plain http too
    where private addresses are allowed)."""
    url = wire.URL if allow_private else _HTTPS
    return f"{stripped_at_most(2048)}{url.removeprefix('^').removesuffix('$')}{STRIPPED}*$"


# --------------------------------------------------------------------------- answers' schemas

SubscribableEvent = Literal[
    "tool_execution.succeeded",
    "tool_execution.failed",
    "tool_execution.cancelled",
    "file.upload.completed",
    "file.upload.failed",
    "file.playback_ready",
    "file.download_ready",
    "file.analysis_completed",
    "file.analysis_failed",
    "task.completed",
    "task.failed",
    "task.cancelled",
    "webhook_endpoint.disabled",
]  # domain.webhooks.SUBSCRIBABLE
SentEvent = Literal[SubscribableEvent, "webhook.test"]  # and domain.webhooks.TEST_EVENT
EndpointStatus = Literal["enabled", "disabled"]  # store.endpoints
Seconds = int | None

ENDPOINT_EXAMPLE = "ep_5jWO1OKQFs-xCT63foGTQQ"
_SECRET = "whsec_fnueBHCwSFchMMez8DCzWfiNVN26g7zjIX2/AhQXiq2wzN7P"
_MESSAGE = "msg_S2GLBomARlYcjRUqcn29rDtL"
DELIVERY_EXAMPLE = "whd_k3v9x0q2m8a1b7c4d5e6"


class _Endpoint(wire.Wire):
    endpointId: str = Field(pattern=ENDPOINT_ID, examples=[ENDPOINT_EXAMPLE])
    url: str = Field(examples=["https://example.com/webhooks/videogen"])
    events: list[SubscribableEvent] = Field(description="What it subscribes to, each once.")
    description: str | None
    createdAt: int = Field(ge=0, description="Unix seconds.")
    signingSecretLast4: str = Field(
        pattern="^[A-Za-z0-9+/]{4}$", description="The signing secret's last 4 characters."
    )
    status: EndpointStatus = Field(
        description="Hatchery's: `enabled`, or `disabled` by the server after its attempts "
        "failed for too long (`disabledReason` says why; `POST .../enable` enables it again). "
        "Nothing is sent to a disabled endpoint."
    )
    disabledAt: Seconds = Field(ge=0, description="Hatchery's: when it was disabled (Unix s).")
    disabledReason: str | None = Field(
        description="Hatchery's: why it was disabled.", examples=["every attempt failed for 5 days"]
    )


class WebhookEndpoint(_Endpoint):
    """A registered receiver of the account's events (the contract's `WebhookEndpoint`); besides
    the contract's fields it has Hatchery's `status`, `disabledAt` and `disabledReason`."""

    signingSecret: None = Field(description="Null: the secret is shown once, when it is made.")


class NewWebhookEndpoint(_Endpoint):
    """A receiver just registered, with its signing secret (shown this once)."""

    signingSecret: str = Field(
        pattern=SECRET,
        description="The secret its messages are signed with (`whsec_` and the base64 of 36 "
        "random bytes): keep it, it is never shown again.",
        examples=[_SECRET],
    )


class ListWebhookEndpointsResponse(wire.Wire):
    """The account's endpoints, oldest first: every one of them, disabled ones too."""

    endpoints: list[WebhookEndpoint]


class WebhookDeliveryAttempt(wire.Wire):
    """One attempt to send a message."""

    attempt: int = Field(ge=1, description="1 for the first; a redelivery's go on counting.")
    attemptedAt: float = Field(ge=0, description="When it began, in Unix seconds.")
    durationMs: int = Field(ge=0, description="Until the answer came, or the attempt failed.")
    statusCode: int | None = Field(
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


class WebhookDelivery(wire.Wire):
    """Hatchery's: one message (an event for one receiver) and every attempt made to send it."""

    deliveryId: str = Field(pattern=wire.DELIVERY_ID, examples=[DELIVERY_EXAMPLE])
    webhookId: str = Field(
        pattern=wire.MESSAGE_ID,
        description="Its `webhook-id` header: the same on every attempt, every redelivery and "
        "every receiver of the event.",
        examples=[_MESSAGE],
    )
    event: SentEvent
    endpointId: str | None = Field(
        pattern=ENDPOINT_ID,
        description="The endpoint it is for; null for an Egg API task's `webhook_url`.",
    )
    subjectId: str = Field(
        description="What the event is about: a tool execution (`vg_exec_...`), a file "
        "(`vg_file_...`), an Egg API task (`gen_...`) or, for `webhook_endpoint.disabled` and "
        "`webhook.test`, an endpoint (`ep_...`).",
        examples=[EXECUTION_EXAMPLE],
    )
    url: str = Field(description="Where it is sent.")
    status: wire.DeliveryStatus = Field(
        description="`pending` (waiting for its next attempt), `delivered` (a 2xx), `failed` "
        "(its retries ran out, or its URL was refused) or `cancelled` (its endpoint was "
        "deleted or disabled first)."
    )
    createdAt: int = Field(ge=0, description="Unix seconds.")
    nextAttemptAt: Seconds = Field(ge=0, description="While `pending`: when it is tried.")
    deliveredAt: Seconds = Field(ge=0, description="When the attempt that got a 2xx began.")
    attempts: list[WebhookDeliveryAttempt] = Field(description="Oldest first.")


class ListWebhookDeliveriesResponse(wire.Wire):
    """A page of the account's messages, newest first."""

    deliveries: list[WebhookDelivery]
    hasMore: bool = Field(description="Whether another page follows.")
    nextCursor: str | None = Field(
        pattern=DELIVERIES_CURSOR,
        description="Where the next page starts (null on the last page): pass it back unchanged "
        "as `?cursor=`.",
    )


ANSWERS: tuple[type[BaseModel], ...] = (
    NewWebhookEndpoint,
    WebhookEndpoint,
    ListWebhookEndpointsResponse,
    WebhookDelivery,
    ListWebhookDeliveriesResponse,
)


def request_schemas(settings: Settings) -> Doc:
    """``CreateWebhookEndpointRequest``: the server's own model, with the URL syntax it takes."""
    schema = _body(
        CreateWebhookEndpoint,
        "A new endpoint (the contract's). Unknown fields are refused.",
        {
            "url": "Where to POST the events: https (checked as `webhook_url` is: a host that "
            "resolves, now, to public addresses only, unless the server allows private ones; "
            "there, plain http is taken too, to private addresses only), at most 2048 "
            "characters once white space around it is removed.",
            "events": "What to send it: events this server sends (see `POST "
            "/v1/webhooks/endpoints`), a repeated one counted once. White space around a name "
            "is removed first.",
            "description": "Yours, to tell endpoints apart: at most 1024 characters once white "
            "space around it is removed.",
        },
    )
    properties = schema["properties"]
    del properties["url"]["maxLength"]  # in the pattern, as the server counts it
    properties["url"]["pattern"] = receiver_url(settings.allow_private_urls)
    properties["events"]["items"]["enum"] = list(get_args(SubscribableEvent))
    description = next(s for s in properties["description"]["anyOf"] if s["type"] == "string")
    description["pattern"] = stripped_at_most(description.pop("maxLength"))
    return {"CreateWebhookEndpointRequest": schema}


# --------------------------------------------------------------------------- examples

_ENDPOINT: Doc = {
    "endpointId": ENDPOINT_EXAMPLE,
    "url": "https://example.com/webhooks/videogen",
    "events": ["tool_execution.succeeded", "tool_execution.failed"],
    "description": "production",
    "createdAt": 1778232600,
    "signingSecret": None,
    "signingSecretLast4": _SECRET[-4:],
    "status": "enabled",
    "disabledAt": None,
    "disabledReason": None,
}
_DISABLED: Doc = _ENDPOINT | {
    "status": "disabled",
    "disabledAt": 1778664600,
    "disabledReason": "every attempt failed for 5 days",
}
_DELIVERED: Doc = {
    "deliveryId": DELIVERY_EXAMPLE,
    "webhookId": _MESSAGE,
    "event": "tool_execution.succeeded",
    "endpointId": ENDPOINT_EXAMPLE,
    "subjectId": EXECUTION_EXAMPLE,
    "url": "https://example.com/webhooks/videogen",
    "status": "delivered",
    "createdAt": 1778232602,
    "nextAttemptAt": None,
    "deliveredAt": 1778232607,
    "attempts": [
        {
            "attempt": 1,
            "attemptedAt": 1778232602.114,
            "durationMs": 212,
            "statusCode": 503,
            "response": "upstream unavailable",
            "error": "HTTP 503",
        },
        {
            "attempt": 2,
            "attemptedAt": 1778232607.031,
            "durationMs": 84,
            "statusCode": 200,
            "response": "ok",
            "error": None,
        },
    ],
}
_TEST: Doc = _DELIVERED | {
    "deliveryId": "whd_0h4q8x2m6c1v9b3n7k5p",
    "webhookId": "msg_Ry5DqW8tPz0mKc3LxV7nHa2j",
    "event": "webhook.test",
    "subjectId": ENDPOINT_EXAMPLE,
    "status": "pending",
    "createdAt": 1778236200,
    "nextAttemptAt": 1778236200,
    "deliveredAt": None,
    "attempts": [],
}
_TASK: Doc = _DELIVERED | {
    "deliveryId": "whd_p2k7x9m4c8v1b6n3q0h5",
    "webhookId": "msg_Jf3Kq8ZpW1xN6vT2cR9mLb4s",
    "event": "task.completed",
    "endpointId": None,
    "subjectId": "gen_abc123def456",
    "url": "https://example.com/eggapi/webhook",
    "status": "pending",
    "nextAttemptAt": 1778232659,
    "deliveredAt": None,
    "attempts": _DELIVERED["attempts"][:1],
}
_REDELIVERED: Doc = _DELIVERED | {
    "status": "pending",
    "nextAttemptAt": 1778236200,
    "deliveredAt": None,
}


# --------------------------------------------------------------------------- operations

_READS = "the other webhook reads"
_OURS = "(Hatchery's, not in the contract.)"
_ENDPOINT_400 = {
    "invalid_id": "`endpointId` is not an endpoint id (`ep_` and 8 to 40 letters, digits, `_` "
    "or `-`)"
}
_ENDPOINT_404 = {
    "not_found": "no endpoint with this id is the account's, or it was deleted (`Webhook "
    "endpoint not found: ...`)"
}
_DELIVERY_400 = {
    "invalid_id": "`deliveryId` does not start with `whd_`, or is longer than 40 characters"
}
_DELIVERY_404 = {
    "not_found": "no message with this id is the account's (`Webhook delivery not found: ...`)"
}
_DISABLED_409 = {
    "conflict": "the endpoint is disabled: enable it first (`POST "
    "/v1/webhooks/endpoints/{endpointId}/enable`)"
}
_DISABLED_MESSAGE = (
    f"Webhook endpoint {ENDPOINT_EXAMPLE} is disabled (every attempt failed for 5 days); enable "
    f"it first with POST /v1/webhooks/endpoints/{ENDPOINT_EXAMPLE}/enable"
)
_UNAVAILABLE = {"service_unavailable": "the database did not answer in time; retry"}


def _unavailable() -> Doc:
    return {"503": error(_UNAVAILABLE, message="the database is unavailable (timed out)")}


def _endpoint_errors() -> Doc:
    bad = "'abc' is not a webhook endpoint id; they look like ep_..."
    return {
        "400": error(_ENDPOINT_400, message=bad),
        "404": error(_ENDPOINT_404, message=f"Webhook endpoint not found: {ENDPOINT_EXAMPLE}"),
    } | _unavailable()


def _delivery_errors() -> Doc:
    bad = "'abc' is not a webhook delivery id; they look like whd_..."
    return {
        "400": error(_DELIVERY_400, message=bad),
        "404": error(_DELIVERY_404, message=f"Webhook delivery not found: {DELIVERY_EXAMPLE}"),
    } | _unavailable()


def _endpoint_id() -> Doc:
    return _path(
        "endpointId",
        ENDPOINT_ID,
        "The endpoint's id. Anything else is 400 `invalid_id`; another account's endpoint, a "
        "deleted one, or none, is 404 `not_found`.",
        ENDPOINT_EXAMPLE,
    )


def _delivery_id() -> Doc:
    return _path(
        "deliveryId",
        wire.DELIVERY_ID,
        "The message's `deliveryId`: `whd_` and 20 lowercase letters or digits; anything else "
        "is 400 `invalid_id`, and one that is not the account's message 404 `not_found`.",
        DELIVERY_EXAMPLE,
    )


_BY_ID: dict[str, tuple[Callable[[], Doc], Callable[[], Doc]]] = {
    "endpoint": (_endpoint_errors, _endpoint_id),
    "delivery": (_delivery_errors, _delivery_id),
}


def _links(field: str, *targets: tuple[str, str, str]) -> Doc:
    """Links to ``targets`` (name, operation, description), whose ``field`` parameter is the
    answer's."""
    return {
        name: {
            "operationId": operation,
            "parameters": {field: f"$response.body#/{field}"},
            "description": description,
        }
        for name, operation, description in targets
    }


ENDPOINT_LINKS = _links(
    "endpointId",
    ("GetWebhookEndpoint", "getWebhookEndpoint", "The endpoint."),
    ("TestWebhookEndpoint", "testWebhookEndpoint", "Send it a test event."),
    ("EnableWebhookEndpoint", "enableWebhookEndpoint", "Enable it again."),
    ("DeleteWebhookEndpoint", "deleteWebhookEndpoint", "Delete it."),
)
DELIVERY_LINKS = _links(
    "deliveryId",
    ("GetWebhookDelivery", "getWebhookDelivery", "Follow the message's attempts."),
    ("RedeliverWebhookDelivery", "redeliverWebhookDelivery", "Send it again."),
)


def _delivery_answer(description: str, examples: Doc, status: str = "200") -> Doc:
    return {status: _answer(description, "WebhookDelivery", examples, links=DELIVERY_LINKS)}


def _sending(settings: Settings) -> str:
    """How a message is sent, signed and retried (``webhooks.delivery``, ``webhooks.signing``):
    the settings' schedule and timeout."""
    schedule = Schedule(
        parse_schedule(settings.webhook_endpoint_schedule), settings.webhook_endpoint_timeout
    )
    days = settings.webhook_disable_after / 86400
    return (
        "**Events.** `tool_execution.succeeded`, `.failed`, `.cancelled` (an execution ended: "
        "`{event, toolExecutionId, toolType, occurredAt}`, with `results`, each file hydrated, "
        "on `succeeded` and `error` on `failed`); `file.upload.completed`, `file.upload.failed`, "
        "`file.playback_ready`, `file.download_ready`, `file.analysis_completed`, "
        "`file.analysis_failed` (an upload's processing: `{event, fileId, occurredAt, file}`, "
        "`error` on the failed ones); `task.completed`, `.failed`, `.cancelled` (an Egg API task "
        "ended: the Egg API's body); `webhook_endpoint.disabled` (one of the account's endpoints "
        "was disabled: `{event, endpointId, url, occurredAt, reason}`). `webhook.test` "
        "(`{event, endpointId, occurredAt}`) is sent only by `POST .../test`. The executions' and "
        "files' payloads are made at each attempt, so their signed URLs are fresh; `occurredAt` "
        "(Unix seconds) stays the event's time. The Egg API's body is the same bytes on every "
        "attempt.\n\n"
        "**Signing (Standard Webhooks).** A JSON POST with `webhook-id` (the message's id, "
        "`msg_...`: the same on every attempt and redelivery, deduplicate by it), "
        "`webhook-timestamp` (this attempt's Unix seconds) and `webhook-signature: v1,<base64 "
        'HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{raw body}">`, keyed with the base64 '
        "after `whsec_` of the endpoint's secret: any Standard Webhooks library verifies it.\n\n"
        f"**Delivery.** Any 2xx within {schedule.timeout:g} s "
        "(`HATCHERY_WEBHOOK_ENDPOINT_TIMEOUT`) is success; anything else (redirects are not "
        f"followed) {retried(schedule, '`HATCHERY_WEBHOOK_ENDPOINT_SCHEDULE`')}. Messages are "
        f"not ordered. An endpoint whose every attempt failed for {days:g} days "
        "(`HATCHERY_WEBHOOK_DISABLE_AFTER`) is disabled: what still waits for it is cancelled, "
        "and the account's other endpoints that subscribe to `webhook_endpoint.disabled` are told."
    )


def _create(settings: Settings) -> Doc:
    operation = _operation(
        settings,
        "createWebhookEndpoint",
        "Create a webhook endpoint",
        "Registers a receiver of the account's events: answered 201 with its signing secret, "
        f"**shown this once**. An account has at most {MAX_ENDPOINTS} endpoints.\n\n"
        + _sending(settings),
        Group.WEBHOOKS_CHANGE,
        {
            "201": _answer(
                "The endpoint, with its signing secret.",
                "NewWebhookEndpoint",
                {"created": _ENDPOINT | {"signingSecret": _SECRET}},
                links=ENDPOINT_LINKS,
            ),
            "400": error(
                {
                    "invalid_parameters": "the body is not a JSON object of the request's "
                    "schema: a field is missing, of the wrong type or out of range, or unknown "
                    "(checked before the API key); an event this server does not send; a `url` "
                    "the server refuses (not https, a private address, a host that does not "
                    f"resolve); or the account has {MAX_ENDPOINTS} endpoints already"
                },
                message="url is not allowed: the URL must be https",
            ),
            "503": error(
                {
                    "service_unavailable": "the `url`'s host name did not resolve within "
                    f"{URL_CHECK_TIMEOUT:g} s, or the database did not answer; nothing was "
                    "created, retry"
                },
                message="Resolving the url's host name timed out; try again",
            ),
        },
        "deleting and enabling endpoints",
        tag=WEBHOOKS_TAG,
    )
    operation["requestBody"] = {
        "required": True,
        "content": {
            JSON: {
                "schema": _ref("schemas", "CreateWebhookEndpointRequest"),
                "examples": {
                    "endpoint": {
                        "value": {
                            "url": "https://example.com/webhooks/videogen",
                            "events": ["tool_execution.succeeded", "tool_execution.failed"],
                            "description": "production",
                        }
                    }
                },
            }
        },
    }
    return operation


def _by_id(
    of: str,
    settings: Settings,
    operation_id: str,
    summary: str,
    description: str,
    group: Group,
    answers: Doc,
    shared: str,
) -> Doc:
    """An operation on one endpoint (``of="endpoint"``) or one message (``"delivery"``): its
    id in the path, and the errors an id of the wrong shape or of no such one gives."""
    errors, parameter = _BY_ID[of]
    operation = _operation(
        settings,
        operation_id,
        summary,
        description,
        group,
        errors() | answers,
        shared,
        tag=WEBHOOKS_TAG,
    )
    operation["parameters"] = [parameter()]
    return operation


def _endpoint_paths(settings: Settings) -> dict[str, Doc]:
    endpoints = _operation(
        settings,
        "listWebhookEndpoints",
        "List webhook endpoints",
        "The account's endpoints, oldest first, all in one answer, their secrets as their last "
        "4 characters (`signingSecret` null).",
        Group.WEBHOOKS_READ,
        {
            "200": _answer(
                "The endpoints (`[]` when none).",
                "ListWebhookEndpointsResponse",
                {"endpoints": {"endpoints": [_ENDPOINT, _DISABLED]}},
            )
        }
        | _unavailable(),
        _READS,
        tag=WEBHOOKS_TAG,
    )
    get = _by_id(
        "endpoint",
        settings,
        "getWebhookEndpoint",
        "Get a webhook endpoint",
        f"The endpoint, as the list shows it. {_OURS}",
        Group.WEBHOOKS_READ,
        {"200": _answer("The endpoint.", "WebhookEndpoint", {"enabled": _ENDPOINT})},
        _READS,
    )
    delete = _by_id(
        "endpoint",
        settings,
        "deleteWebhookEndpoint",
        "Delete a webhook endpoint",
        "The endpoint is deleted: what still waits for it is cancelled, not sent (a message "
        "being sent now is recorded when it ends, and not tried again). Its messages stay in "
        "the log. No body.",
        Group.WEBHOOKS_CHANGE,
        {"204": {"description": "Deleted.", "headers": _headers()}},
        "creating and enabling endpoints",
    )
    enable = _by_id(
        "endpoint",
        settings,
        "enableWebhookEndpoint",
        "Enable a webhook endpoint",
        "Enables an endpoint the server disabled, its run of failures forgotten; enabling an "
        "enabled one changes nothing. The messages cancelled when it was disabled stay so: "
        f"redeliver those you want (`POST /v1/webhooks/deliveries/{{deliveryId}}/redeliver`). "
        f"No body. {_OURS}",
        Group.WEBHOOKS_CHANGE,
        {"200": _answer("The endpoint, enabled.", "WebhookEndpoint", {"enabled": _ENDPOINT})},
        "creating and deleting endpoints",
    )
    test = _by_id(
        "endpoint",
        settings,
        "testWebhookEndpoint",
        "Send a test event",
        "Queues a `webhook.test` message (`{event, endpointId, occurredAt}`) to the endpoint, "
        "whatever it subscribes to, due at once, signed and retried as any other: follow it "
        f"with `GET /v1/webhooks/deliveries/{{deliveryId}}`. No body. {_OURS}",
        Group.WEBHOOKS_SEND,
        _delivery_answer("The message, queued.", {"queued": _TEST}, "202")
        | {"409": error(_DISABLED_409, message=_DISABLED_MESSAGE)},
        "redeliveries",
    )
    one = "/v1/webhooks/endpoints/{endpointId}"
    return {
        "/v1/webhooks/endpoints": {"post": _create(settings), "get": endpoints},
        one: {"get": get, "delete": delete},
        f"{one}/enable": {"post": enable},
        f"{one}/test": {"post": test},
    }


def _log_parameters() -> list[Doc]:
    invalid_id = "Anything else is 400 `invalid_id`."
    return [
        _query(
            "endpointId",
            {"type": "string", "pattern": ENDPOINT_ID},
            f"Only the messages to this endpoint. {invalid_id}",
            ENDPOINT_EXAMPLE,
        ),
        _query(
            "toolExecutionId",
            {"type": "string", "pattern": EXECUTION_ID},
            f"Only the messages about this execution (not with `fileId`). {invalid_id}",
            EXECUTION_EXAMPLE,
        ),
        _query(
            "fileId",
            {"type": "string", "pattern": FILE_ID},
            f"Only the messages about this file (not with `toolExecutionId`). {invalid_id}",
        ),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 200},
            "Messages per page (50 when omitted). Anything but a whole number from 1 to 200 is "
            "400 `invalid_parameters` (checked before the API key).",
        ),
        _query(
            "cursor",
            {"type": "string", "pattern": DELIVERIES_CURSOR},
            "Where the page starts: `nextCursor` of the previous page, passed back unchanged "
            "(with the same filters, any `limit`). A cursor this server did not give out is 400 "
            "`invalid_parameters`.",
            "dmd3MS40Mg",
        ),
    ]


def _list_deliveries(settings: Settings) -> Doc:
    operation = _operation(
        settings,
        "listWebhookDeliveries",
        "List webhook deliveries",
        "The account's messages, newest first, each with every attempt made: those to its "
        "endpoints and those to its Egg API tasks' `webhook_url` (`endpointId` null); 50 a "
        f"page unless `limit` says otherwise. {_OURS}",
        Group.WEBHOOKS_READ,
        {
            "200": _answer(
                "A page of messages.",
                "ListWebhookDeliveriesResponse",
                {
                    "page": {
                        "deliveries": [_TEST, _DELIVERED],
                        "hasMore": True,
                        "nextCursor": "dmd3MS40Mg",
                    },
                    "last": {"deliveries": [_TASK], "hasMore": False, "nextCursor": None},
                },
            ),
            "400": error(
                {
                    "invalid_parameters": "`limit` not a whole number from 1 to 200 (checked "
                    "before the API key), `toolExecutionId` together with `fileId`, or a "
                    "`cursor` this server did not give out",
                    "invalid_id": "`endpointId`, `toolExecutionId` or `fileId` is not an id of "
                    "its kind",
                },
                message="pass toolExecutionId or fileId, not both",
            ),
        }
        | _unavailable(),
        _READS,
        tag=WEBHOOKS_TAG,
    )
    operation["parameters"] = _log_parameters()
    return operation


def _delivery_paths(settings: Settings) -> dict[str, Doc]:
    get = _by_id(
        "delivery",
        settings,
        "getWebhookDelivery",
        "Get a webhook delivery",
        f"The message and every attempt made to send it. {_OURS}",
        Group.WEBHOOKS_READ,
        _delivery_answer("The message.", {"delivered": _DELIVERED, "queued": _TEST}),
        _READS,
    )
    redeliver = _by_id(
        "delivery",
        settings,
        "redeliverWebhookDelivery",
        "Redeliver a webhook",
        "Sends the message again, now, whatever its status: the same `webhook-id`, a new "
        "timestamp and signature, and a fresh retry schedule (a VideoGen payload is made anew, "
        "its signed URLs fresh; an Egg API task's body is the same bytes). Its attempts go on "
        f"counting. No body. {_OURS}",
        Group.WEBHOOKS_SEND,
        _delivery_answer(
            "The message, `pending` and due now.", {"redelivered": _REDELIVERED}, "202"
        )
        | {
            "404": error(
                {
                    "not_found": "no message with this id is the account's (`Webhook delivery "
                    "not found: ...`), or the endpoint it is for was deleted (`Webhook endpoint "
                    "not found: ...`)"
                },
                message=f"Webhook delivery not found: {DELIVERY_EXAMPLE}",
            ),
            "409": error(_DISABLED_409, message=_DISABLED_MESSAGE),
        },
        "test events",
    )
    one = "/v1/webhooks/deliveries/{deliveryId}"
    return {
        "/v1/webhooks/deliveries": {"get": _list_deliveries(settings)},
        one: {"get": get},
        f"{one}/redeliver": {"post": redeliver},
    }


def paths(settings: Settings) -> dict[str, Doc]:
    """``api.videogen.webhooks``'s routes: the endpoints and the delivery log."""
    return _endpoint_paths(settings) | _delivery_paths(settings)
