"""The API's OpenAPI 3.1 document, written out route by route.

The routes read raw requests (they parse queries, headers and bodies themselves to answer with the
Egg error envelope), so FastAPI cannot infer anything from them: the document is built here, from
the model catalog and the settings it depends on (models and prices, body and rate limits), with
the answers' schemas from ``api.openapi_schemas`` and the request body's from the server's own
request model (``api.schemas``). ``create_app`` serves it at ``GET /openapi.json``, built once per
app, with Swagger UI at ``GET /docs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from hatchery import __version__
from hatchery.api import openapi_schemas as wire
from hatchery.api.generate import URL_CHECK_TIMEOUT
from hatchery.api.schemas import generate_model
from hatchery.domain.catalog import Catalog, Model
from hatchery.domain.money import format_cost
from hatchery.domain.webhooks import Schedule
from hatchery.settings import Settings

JSON = "application/json"
Doc = dict[str, Any]

ERRORS = {  # what each error code means, for the descriptions of the error answers
    "BAD_REQUEST": "a malformed request: query, header or body",
    "VALIDATION_ERROR": "a field of the request body failed validation",
    "UNAUTHORIZED": "the API key is missing, malformed, unknown, revoked or expired",
    "FORBIDDEN": "the account is suspended",
    "INSUFFICIENT_BALANCE": "the available balance cannot cover the task's price",
    "NOT_FOUND": "no such resource (for this account)",
    "CONFLICT": "the resource's state does not allow the request",
    "IDEMPOTENCY_MISMATCH": "the Idempotency-Key was used with a different body",
    "RATE_LIMITED": "over the API key's or the client IP's rate limit",
    "INTERNAL_ERROR": "an unexpected failure; nothing half-written is kept",
    "SERVICE_UNAVAILABLE": "the database (or a name resolver) did not answer in time; retry",
}


EXAMPLES = {  # an example message of each error code
    "BAD_REQUEST": "per_page must be a whole number from 1 to 100 (got '500')",
    "VALIDATION_ERROR": "Key: 'GenerateRequest.Model' Error:Field validation for 'Model' failed on "
    "the 'oneof' tag (model must be one of: nanobanana, nanobanana-pro, veo3.1)",
    "UNAUTHORIZED": "Missing Authorization header",
    "FORBIDDEN": "Account is suspended: contact the operator of this server",
    "INSUFFICIENT_BALANCE": "Insufficient balance: this task costs more than the account's "
    "available balance; add funds and try again",
    "NOT_FOUND": "Task not found: gen_abc123def456",
    "CONFLICT": "Task gen_abc123def456 is already completed; only pending or processing tasks "
    "can be cancelled",
    "IDEMPOTENCY_MISMATCH": "Idempotency-Key 'order-1234' was already used with a different "
    "request body; send the same body to get that task back, or use a new key for a new request",
    "RATE_LIMITED": "Rate limit exceeded: per API key 100 per 1 second; retry in 1 s",
    "INTERNAL_ERROR": "Internal server error; the request was not completed",
    "SERVICE_UNAVAILABLE": "the database is unreachable (OSError)",
}


def _ref(kind: str, name: str) -> Doc:
    return {"$ref": f"#/components/{kind}/{name}"}


# --------------------------------------------------------------------------- answers


def _headers(*names: str, v1: bool = True) -> Doc:
    """A response's headers: X-Request-ID, the rate limit headers on /v1, and ``names``."""
    limits: tuple[str, ...] = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    limits = (*limits, *("X-" + name for name in limits)) if v1 else ()
    return {name: _ref("headers", name) for name in ("X-Request-ID", *limits, *names)}


def _json(schema: str, examples: Doc | None = None) -> Doc:
    media: Doc = {"schema": _ref("schemas", schema)}
    if examples:
        media["examples"] = {name: {"value": value} for name, value in examples.items()}
    return {JSON: media}


def error(
    causes: dict[str, str],
    *,
    v1: bool = True,
    headers: Doc | None = None,
    message: str | None = None,
) -> Doc:
    """An error answer: the envelope, its possible codes (as an enum) and what causes each; its
    example is the first code's, with ``message`` if given."""
    lines = [f"- `{code}`: {cause}" for code, cause in causes.items()]
    code = next(iter(causes))
    example = message or EXAMPLES.get(code, "...")
    envelope = {"data": None, "error": {"code": code, "message": example}}
    schema = {
        "allOf": [_ref("schemas", "ErrorResponse")],
        "properties": {"error": {"properties": {"code": {"enum": list(causes)}}}},
    }
    return {
        "description": "\n".join(lines),
        "headers": _headers(v1=v1) | (headers or {}),
        "content": {JSON: {"schema": schema, "example": envelope}},
    }


def _v1_errors() -> dict[str, Doc]:
    return v1_errors()


def v1_errors(forbidden: str | None = None) -> dict[str, Doc]:
    """What any /v1 (or /admin/v1) route can answer besides its own errors; ``forbidden``, what
    else than a suspended account it refuses."""
    refused = ERRORS["FORBIDDEN"] + (f"; or {forbidden}" if forbidden else "")
    return {
        "401": error({"UNAUTHORIZED": _UNAUTHORIZED}),
        "403": error({"FORBIDDEN": refused}),
        "429": _rate_limited(),
        "500": error({"INTERNAL_ERROR": ERRORS["INTERNAL_ERROR"]}),
        "503": error({"SERVICE_UNAVAILABLE": "the database did not answer in time; retry"}),
    }


_UNAUTHORIZED = (
    "`Missing Authorization header`; `Invalid Authorization format, expected 'Bearer <token>'`; "
    "or the key is unknown, revoked or expired"
)


RETRY_AFTER = {  # not a $ref: a response's `required` cannot be set beside one
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 1},
}


def _rate_limited() -> Doc:
    return error(
        {
            "RATE_LIMITED": "over the client IP's limit (counted first, for every request) or "
            "the API key's (the account's own, or the server's default); the message says which "
            "and when to retry"
        },
        headers={"Retry-After": RETRY_AFTER | {"required": True}},
    )


def _task_answer(description: str, *extra_headers: str, links: bool = False) -> Doc:
    answer: Doc = {
        "description": description,
        "headers": _headers(*extra_headers),
        "content": _json("TaskResponse", TASK_EXAMPLES),
    }
    if links:
        answer["links"] = TASK_LINKS
    return answer


TASK_LINKS = {
    name: {
        "operationId": operation,
        "parameters": {"task_id": "$response.body#/data/id"},
        "description": description,
    }
    for name, operation, description in (
        ("GetTask", "getTask", "Poll the task."),
        ("CancelTask", "cancelTask", "Cancel the task."),
        ("StreamTaskEvents", "streamTaskEvents", "Follow the task's status changes."),
        ("ListTaskWebhooks", "listTaskWebhooks", "The webhooks of the task's end."),
    )
}

_PENDING = {
    "id": "gen_abc123def456",
    "status": "pending",
    "model": "nanobanana",
    "type": "image_generate",
    "output": None,
    "error": None,
    "cost": "$0.00",
    "created_at": "2026-05-08T10:30:00Z",
    "started_at": None,
    "completed_at": None,
}
TASK_EXAMPLES = {
    "pending": {"data": _PENDING, "error": None},
    "completed": {
        "data": _PENDING
        | {
            "status": "completed",
            "output": {
                "url": "https://file.eggapi.ai/images/gen_abc123def456/0.png",
                "urls": ["https://file.eggapi.ai/images/gen_abc123def456/0.png"],
                "resolution": "1k",
            },
            "cost": "$0.0100",
            "started_at": "2026-05-08T10:30:01Z",
            "completed_at": "2026-05-08T10:30:12Z",
        },
        "error": None,
    },
    "failed": {
        "data": _PENDING
        | {
            "status": "failed",
            "error": "generation failed: upstream provider unavailable",
            "started_at": "2026-05-08T10:30:01Z",
            "completed_at": "2026-05-08T10:30:12Z",
        },
        "error": None,
    },
}


# --------------------------------------------------------------------------- parameters


def _query(name: str, schema: Doc, description: str, example: Any = None) -> Doc:
    parameter = {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": True,  # an empty value is the same as none
        "schema": schema,
        "description": description + " An empty value is the same as none.",
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def _parameters() -> dict[str, Doc]:
    statuses, types = list(get_args(wire.Status)), list(get_args(wire.TaskTypeName))
    date = {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    return {
        "TaskId": {
            "name": "task_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": wire.TASK_ID},
            "description": "The task's id. Any other account's task, or anything that is not a "
            "task id, is 404 NOT_FOUND.",
            "example": "gen_abc123def456",
        },
        "Page": _query(
            "page",
            {"type": "integer", "minimum": 1, "maximum": 1_000_000_000, "default": 1},
            "The page, from 1. Anything but a whole number from 1 to 1000000000 is "
            "400 BAD_REQUEST.",
        ),
        "PerPage": _query(
            "per_page",
            {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            "Items per page. Anything but a whole number from 1 to 100 is 400 BAD_REQUEST.",
        ),
        "Status": _query(
            "status",
            {"type": "string", "enum": statuses},
            "Only tasks with this status; another value is 400 BAD_REQUEST.",
        ),
        "Model": _query("model", {"type": "string"}, "Only this model's (any name).", "nanobanana"),
        "Type": _query(
            "type",
            {"type": "string", "enum": types},
            "Only this type's; another value is 400 BAD_REQUEST.",
        ),
        "Cursor": _query(
            "cursor",
            {"type": "string", "pattern": wire.CURSOR},
            "Where the page starts: `data.pagination.cursor` of the previous page, passed back "
            "unchanged (with the same filters and `per_page`). Not together with `page`; a "
            "cursor this server did not give out, or one with `page`, is 400 BAD_REQUEST. Pages "
            "reached by cursor never repeat a task, however many are submitted meanwhile.",
        ),
        "ApiKey": _query(
            "api_key",
            {"type": "string"},
            "One of the account's API keys: its prefix (first 13 characters) or the whole key "
            "(only its first 13 characters are compared). A key that is not the account's, "
            "revoked ones included, is 404 NOT_FOUND (`API key not found: ...`).",
            "hk_AbCdEf1234",
        ),
        "StartDate": _query(
            "start_date",
            date,
            "The first UTC day included, `YYYY-MM-DD`; another form is 400 BAD_REQUEST.",
            "2026-05-01",
        ),
        "EndDate": _query(
            "end_date",
            date,
            "The last UTC day included, `YYYY-MM-DD`; another form, or a day before "
            "`start_date`, is 400 BAD_REQUEST.",
            "2026-05-31",
        ),
        "Prefer": {
            "name": "Prefer",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": wire.PREFER},
            "description": "`wait=N` (N whole seconds, 0 to 60) holds the answer until the task "
            "has ended or N seconds have passed, and the answer says `Preference-Applied: "
            "wait=N`; `respond-async` is `wait=0`. Other preferences are ignored. A `wait` "
            "preference whose value is not a whole number from 0 to 60 is 400 BAD_REQUEST.",
            "example": "wait=30",
        },
    }


# --------------------------------------------------------------------------- operations

# A /v1 route takes an API key, or a browser's dashboard session (api.session).
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"dashboardSession": []}]


def _operation(
    operation_id: str, tag: str, summary: str, description: str, responses: dict[str, Doc]
) -> Doc:
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "security": SECURITY,
        "responses": responses,
    }


def _generate(catalog: Catalog, settings: Settings) -> Doc:
    limit, timeout = settings.max_body_bytes, settings.body_timeout
    operation = _operation(
        "generate",
        "Tasks",
        "Submit a generation task",
        "Queues an image (`image_generate`; `image_edit` with `image_urls`) or video "
        "(`video_generate`) task and answers 202 with it at once. The task's price is reserved "
        "from the balance now, charged when it completes, released if it fails or is "
        "cancelled.\n\nThe models of this server:\n\n" + _models_table(catalog),
        {
            "202": _task_answer(
                "The task, queued (`pending`), or still running after `Prefer: wait=N`.",
                "Preference-Applied",
                "Idempotent-Replayed",
                links=True,
            ),
            "200": _task_answer(
                "The task, ended: the request waited for it (`Prefer: wait=N`, or a synchronous "
                "model), or repeats an Idempotency-Key whose task has ended.",
                "Preference-Applied",
                "Idempotent-Replayed",
                links=True,
            ),
            "400": error(_GENERATE_400),
            "401": error({"UNAUTHORIZED": _UNAUTHORIZED}),
            "403": error(
                {
                    "FORBIDDEN": ERRORS["FORBIDDEN"],
                    "INSUFFICIENT_BALANCE": "the available balance (which depends on the "
                    "account's balance and the prices of its unfinished tasks) cannot cover this "
                    "task's price; nothing is created",
                },
            ),
            "408": error(
                {"BAD_REQUEST": f"the body did not arrive within {timeout:g} s; nothing created"},
            ),
            "409": error(
                {
                    "CONFLICT": "the first request with this Idempotency-Key is still being "
                    "handled: retry after `Retry-After` seconds; or another request took the "
                    "key over while this one ran (nothing was created)"
                },
                headers={"Retry-After": RETRY_AFTER},
            ),
            "413": error({"BAD_REQUEST": f"the body is over {limit} bytes; nothing is created"}),
            "422": error(
                {
                    "IDEMPOTENCY_MISMATCH": "this Idempotency-Key was already used (within 24 "
                    "hours, by this account) with a different body"
                },
            ),
            "429": _rate_limited(),
            "500": error({"INTERNAL_ERROR": ERRORS["INTERNAL_ERROR"]}),
            "503": error(
                {
                    "SERVICE_UNAVAILABLE": "the host names of `webhook_url` / `image_urls` could "
                    f"not be resolved within {URL_CHECK_TIMEOUT:g} s, or the database did not "
                    "answer; retry"
                },
            ),
        },
    )
    operation["parameters"] = [
        _ref("parameters", "IdempotencyKey"),
        _ref("parameters", "Prefer"),
    ]
    operation["requestBody"] = {
        "required": True,
        "description": f"A JSON object, at most {limit} bytes. Unknown fields are ignored.",
        "content": {JSON: {"schema": _ref("schemas", "GenerateRequest"), "examples": _BODIES}},
    }
    return operation


_GENERATE_400 = {
    "VALIDATION_ERROR": "a field failed validation: every bad field is named, in the reference "
    "API's words and then in plain ones (`Key: 'GenerateRequest.NumOutputs' Error:Field "
    "validation for 'NumOutputs' failed on the 'max' tag (num_outputs must be an integer from 1 "
    "to 4)`). Also when `webhook_url` or an `image_urls` URL is refused by the server's "
    "outbound URL policy, which depends on what its host name resolves to (now): loopback, "
    "private, link-local, carrier-grade NAT and cloud metadata addresses are refused (unless "
    "the server allows private URLs), and so is a name that does not resolve. And when none of "
    "the model's configured providers can make the request's values (`veo3.1 cannot make this "
    "request: duration must be 4, 6 or 8 seconds (veo, fal)`): which values can be made "
    "depends on the providers this server is configured with (see the models above).",
    "BAD_REQUEST": "the body is not a JSON object; the Idempotency-Key is not 1 to 255 "
    "printable ASCII characters; a `Prefer: wait` is not a whole number from 0 to 60",
}

_BODIES = {
    "generate": {
        "summary": "An image, with a webhook",
        "value": {
            "model": "nanobanana",
            "prompt": "A dashboard hero image with glass UI panels",
            "aspect_ratio": "16:9",
            "num_outputs": 1,
            "webhook_url": "https://example.com/eggapi/webhook",
        },
    },
    "edit": {
        "summary": "An image edit (image_edit): reference images in image_urls",
        "value": {
            "model": "nanobanana",
            "prompt": "the same lighthouse, at night",
            "image_urls": ["https://example.com/ref.png"],
        },
    },
}


def _models_table(catalog: Catalog) -> str:
    rows = ["| model | type | price | providers, in order |", "|---|---|---|---|"]
    rows += [
        f"| `{m.name}` | {m.type.value} | {_price(m)} | {', '.join(m.providers)} |"
        for m in catalog.models.values()
    ]
    return "\n".join(rows)


def _price(model: Model) -> str:
    unit = "second of video (per output)" if model.is_video else "output image"
    return f"{format_cost(model.unit_price_micros)} per {unit}{price_rules(model)}"


def price_rules(model: Model) -> str:
    """``; $0.10 when resolution = 4k; $0.50 when fal is asked first``: the rules that can apply
    (a rule naming a provider the entry does not list never does)."""
    text = ""
    for rule in model.price_rules:
        named = dict(rule.when).get("provider")
        if named is not None and named not in model.providers:
            continue
        when = [f"{name} = {value}" for name, value in rule.when if name != "provider"]
        if named is not None:
            when.append(f"{named} is asked first")
        text += f"; {format_cost(rule.unit_price_micros)} when {', '.join(when)}"
    return text


def _task_operations() -> dict[str, Doc]:
    task_404 = {"NOT_FOUND": "no task with this id is the account's (`Task not found: ...`)"}
    get = _operation(
        "getTask",
        "Tasks",
        "Get a task",
        "The task. With `Prefer: wait=N`, answered once it has ended or N seconds have passed.",
        {
            "200": _task_answer("The task.", "Preference-Applied"),
            "400": error({"BAD_REQUEST": "a `Prefer: wait` not from 0 to 60"}),
            "404": error(task_404),
        }
        | _v1_errors(),
    )
    get["parameters"] = [_ref("parameters", "TaskId"), _ref("parameters", "Prefer")]
    cancel = _operation(
        "cancelTask",
        "Tasks",
        "Cancel a task",
        "A `pending` or `processing` task becomes `cancelled`: its reservation is released, its "
        "`task.cancelled` webhook is sent and its upstream job cancelled where the vendor allows "
        "it. No body.",
        {
            "200": _task_answer("The task, cancelled."),
            "404": error(task_404),
            "409": error(
                {
                    "CONFLICT": "the task has already ended (`Task gen_... is already completed; "
                    "only pending or processing tasks can be cancelled`); it is left as it was"
                },
            ),
        }
        | _v1_errors(),
    )
    cancel["parameters"] = [_ref("parameters", "TaskId")]
    return {"/v1/tasks/{task_id}": {"get": get}, "/v1/tasks/{task_id}/cancel": {"post": cancel}}


_SSE_EXAMPLE = (
    "retry: 2000\n\n"
    "id: 0\nevent: pending\n"
    'data: {"id":"gen_abc123def456","status":"pending","at":"2026-05-08T10:30:00Z"}\n\n'
    "id: 812\nevent: processing\n"
    'data: {"id":"gen_abc123def456","status":"processing","at":"2026-05-08T10:30:01Z"}\n\n'
    "id: 815\nevent: completed\n"
    'data: {"id":"gen_abc123def456","status":"completed", ... the whole task}\n\n'
)


def _events() -> Doc:
    operation = _operation(
        "streamTaskEvents",
        "Tasks",
        "Stream a task's status changes",
        "Server-Sent Events: `retry: 2000`, the task's current status at once (or, with "
        "`Last-Event-ID`, every event after that one), then each status change; the stream ends "
        "after the terminal event (`completed`, `failed`, `cancelled`). Each event has an `id`, "
        "the status as its `event`, and as `data` `{id, status, at}`, or the whole task for the "
        "terminal one. A comment (`: keep-alive`) is sent after 15 s of silence. Errors are "
        "answered before the stream starts.",
        {
            "200": {
                "description": "The event stream.",
                "headers": _headers(),
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "example": _SSE_EXAMPLE,
                    }
                },
            },
            "400": error({"BAD_REQUEST": "a `Last-Event-ID` that is not an event id"}),
            "404": error({"NOT_FOUND": "no task with this id is the account's"}),
        }
        | _v1_errors(),
    )
    operation["parameters"] = [
        _ref("parameters", "TaskId"),
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": wire.LAST_EVENT_ID},
            "description": "The id of the last event received: the stream resends every event "
            "after it (browsers' EventSource sends it when it reconnects). Anything but an "
            "event id (whole number, at most 18 digits) is 400 BAD_REQUEST.",
            "example": "812",
        },
    ]
    return operation


# --------------------------------------------------------------------------- task webhooks


def _durations(delays: Sequence[float]) -> str:
    """``1 min, 4 min and 4 h``: each delay in its largest whole unit."""

    def one(seconds: float) -> str:
        for unit, size in (("h", 3600), ("min", 60)):
            if seconds >= size and seconds % size == 0:
                return f"{seconds / size:g} {unit}"
        return f"{seconds:g} s"

    shown = [one(seconds) for seconds in delays]
    return " and ".join(filter(None, (", ".join(shown[:-1]), *shown[-1:])))


def retried(schedule: Schedule, settings: str) -> str:
    """What happens after a failed attempt on ``schedule`` (named by its ``settings``)."""
    count = len(schedule.delays)
    if not count:
        return f"is not retried ({settings}): the message is `failed`"
    times = "once" if count == 1 else f"{count} times"
    return (
        f"is retried {times}, {_durations(schedule.delays)} after the attempt before (each up "
        f"to 10 % sooner; {settings}), then the message is `failed`"
    )


def _task_webhook_prose(settings: Settings) -> str:
    egg = Schedule.exponential(
        settings.webhook_max_retries,
        settings.webhook_backoff_base,
        settings.webhook_backoff_max,
        settings.webhook_timeout,
    )
    names = "`HATCHERY_WEBHOOK_MAX_RETRIES`, `_BACKOFF_BASE`, `_BACKOFF_MAX`"
    return (
        "**The webhook.** A JSON POST of `{event, task_id, status, model, type, output, error, "
        "cost, timestamp}` (`output` only when completed), the same bytes on every attempt, "
        "with the Egg API's headers: `X-EggAPI-Timestamp` (Unix seconds) and, when the account "
        "has a webhook secret (`hatchery webhook-secret rotate EMAIL`), `X-EggAPI-Signature: "
        'sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">` keyed with the secret\'s text. '
        "Beside them, the Standard Webhooks headers: `webhook-id` (the message's id, the same "
        "on every attempt: deduplicate by it), `webhook-timestamp` (this attempt's Unix "
        "seconds) and, with a secret, `webhook-signature: v1,<base64 HMAC-SHA256 of "
        '"{webhook-id}.{webhook-timestamp}.{raw body}">` keyed as Standard Webhooks libraries '
        "read the secret (the base64 after `whsec_`). Any 2xx within "
        f"{settings.webhook_timeout:g} s (`HATCHERY_WEBHOOK_TIMEOUT`) is success; anything else "
        f"(redirects are not followed) {retried(egg, names)}. A VideoGen API endpoint gets only "
        "the Standard Webhooks headers, signed with its own secret, on its own schedule "
        "(`POST /v1/webhooks/endpoints`)."
    )


_TASK_WEBHOOK: Doc = {
    "id": "whd_k3v9x0q2m8a1b7c4d5e6",
    "webhook_id": "msg_2ZKuO0hJjzY7XbB6cN1qWf4r",
    "event": "task.completed",
    "url": "https://example.com/eggapi/webhook",
    "endpoint_id": None,
    "status": "delivered",
    "created_at": "2026-05-08T10:30:12Z",
    "next_attempt_at": None,
    "delivered_at": "2026-05-08T10:31:10Z",
    "attempts": [
        {
            "attempt": 1,
            "attempted_at": "2026-05-08T10:30:12Z",
            "duration_ms": 212,
            "status_code": 503,
            "response": "upstream unavailable",
            "error": "HTTP 503",
        },
        {
            "attempt": 2,
            "attempted_at": "2026-05-08T10:31:10Z",
            "duration_ms": 84,
            "status_code": 200,
            "response": "ok",
            "error": None,
        },
    ],
}
_REDELIVERED: Doc = _TASK_WEBHOOK | {
    "status": "pending",
    "next_attempt_at": "2026-05-08T11:02:00Z",
    "delivered_at": None,
}
_TASK_404 = "no task with this id is the account's (`Task not found: ...`)"


def _delivery_id() -> Doc:
    return {
        "name": "delivery_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": wire.DELIVERY_ID},
        "description": "The message's `id`. Anything else, or another task's message, is 404 "
        "NOT_FOUND.",
        "example": _TASK_WEBHOOK["id"],
    }


def _task_webhooks(settings: Settings) -> dict[str, Doc]:
    """``api.webhooks``: a task's webhook messages and their redelivery (ours, not the Egg
    API's)."""
    listing = _operation(
        "listTaskWebhooks",
        "Tasks",
        "List a task's webhooks",
        "The messages the task's end queued (Hatchery's, beside the Egg API): one to its "
        "`webhook_url`, and one to each endpoint of the account's that subscribes to the event "
        "(registered with the VideoGen API, `POST /v1/webhooks/endpoints`), each with every "
        "attempt made; newest first, at most 200. `[]` before the task has ended, or when "
        "nothing receives it.\n\n" + _task_webhook_prose(settings),
        {
            "200": {
                "description": "The task's messages.",
                "headers": _headers(),
                "content": _json(
                    "TaskWebhooksResponse",
                    {"delivered": {"data": {"items": [_TASK_WEBHOOK]}, "error": None}},
                ),
            },
            "404": error({"NOT_FOUND": _TASK_404}),
        }
        | _v1_errors(),
    )
    listing["parameters"] = [_ref("parameters", "TaskId")]
    listing["responses"]["200"]["links"] = {
        "RedeliverTaskWebhook": {
            "operationId": "redeliverTaskWebhook",
            "parameters": {
                "task_id": "$request.path.task_id",
                "delivery_id": "$response.body#/data/items/0/id",
            },
            "description": "Send the newest message again.",
        }
    }
    return {
        "/v1/tasks/{task_id}/webhooks": {"get": listing},
        "/v1/tasks/{task_id}/webhooks/{delivery_id}/redeliver": {"post": _redeliver_task()},
    }


def _redeliver_task() -> Doc:
    operation = _operation(
        "redeliverTaskWebhook",
        "Tasks",
        "Redeliver a task's webhook",
        "Sends the message again, now, whatever its status: the same body and `webhook-id`, a "
        "new timestamp and signature (the account's, or its endpoint's, secret as it is now), "
        "and a fresh retry schedule. Its attempts go on counting. No body. (Hatchery's, "
        "beside the Egg API.)",
        {
            "202": {
                "description": "The message, `pending` and due now.",
                "headers": _headers(),
                "content": _json(
                    "TaskWebhookResponse", {"redelivered": {"data": _REDELIVERED, "error": None}}
                ),
            },
            "404": error(
                {
                    "NOT_FOUND": f"{_TASK_404}; the task has no message with this id (`Webhook "
                    "delivery not found: ...`); or the message's endpoint was deleted (`Webhook "
                    "endpoint not found: ...`)"
                }
            ),
            "409": error(
                {
                    "CONFLICT": "the message is to a registered endpoint that is disabled: "
                    "enable it first (`POST /v1/webhooks/endpoints/{endpointId}/enable`)"
                },
                message="Webhook endpoint ep_Xk3mP9qL2vN8rT5wY1zA4b is disabled (every attempt "
                "failed for 5 days); enable it first with POST "
                "/v1/webhooks/endpoints/ep_Xk3mP9qL2vN8rT5wY1zA4b/enable",
            ),
        }
        | _v1_errors(),
    )
    operation["parameters"] = [_ref("parameters", "TaskId"), _delivery_id()]
    return operation


def _list(
    operation_id: str, tag: str, summary: str, description: str, schema: str, bad: str
) -> Doc:
    return _operation(
        operation_id,
        tag,
        summary,
        description,
        {"200": {"description": "The page.", "headers": _headers(), "content": _json(schema)}}
        | {"400": error({"BAD_REQUEST": bad})}
        | _v1_errors(),
    )


_BAD_PAGE = "`page` or `per_page` not a whole number in its range"
_BAD_DATES = "`start_date` or `end_date` not a date as `YYYY-MM-DD`, or `end_date` before it"


def _list_operations() -> dict[str, Doc]:
    tasks = _list(
        "listTasks",
        "Tasks",
        "List tasks",
        "The account's tasks, newest first, by page or by cursor.",
        "TaskPageResponse",
        f"{_BAD_PAGE}; `status` or `type` not one of its values; a `cursor` this server did not "
        "give out, or `cursor` together with `page`",
    )
    tasks["parameters"] = [
        _ref("parameters", name)
        for name in ("Page", "PerPage", "Status", "Model", "Type", "Cursor")
    ]
    usage = _list(
        "listUsage",
        "Usage",
        "List usage records",
        "The account's usage records (one per completed task, written when it is charged), "
        "newest first.",
        "UsagePageResponse",
        f"{_BAD_PAGE}; `type` not one of its values; {_BAD_DATES}",
    )
    usage["responses"]["404"] = error(_KEY_404)
    usage["parameters"] = [
        _ref("parameters", name)
        for name in ("Page", "PerPage", "Model", "Type", "ApiKey", "StartDate", "EndDate")
    ]
    summary = _list(
        "getUsageSummary",
        "Usage",
        "Usage per model",
        "The account's usage summed per model, sorted by model (`[]` when there is none).",
        "UsageSummaryResponse",
        _BAD_DATES,
    )
    summary["responses"]["200"]["content"][JSON]["example"] = {
        "data": [
            {
                "model": "nanobanana",
                "total_units": 1,
                "total_cost": "$0.0100",
                "request_count": 1,
            }
        ],
        "error": None,
    }
    summary["responses"]["404"] = error(_KEY_404)
    summary["parameters"] = [
        _ref("parameters", name) for name in ("ApiKey", "StartDate", "EndDate")
    ]
    return {
        "/v1/tasks": {"get": tasks},
        "/v1/usage": {"get": usage},
        "/v1/usage/summary": {"get": summary},
    }


_KEY_404 = {"NOT_FOUND": "`api_key` is not one of the account's keys"}


def _account() -> Doc:
    operation = _operation(
        "getAccount",
        "Account",
        "The account",
        "The account's balance, and its usage: all of it, or one of its keys' (`?api_key=`).",
        {
            "200": {
                "description": "The account.",
                "headers": _headers(),
                "content": _json("AccountResponse"),
            },
            "404": error(_KEY_404),
        }
        | _v1_errors(),
    )
    operation["parameters"] = [_ref("parameters", "ApiKey")]
    return operation


def _public_operations() -> dict[str, Doc]:
    health = {
        "operationId": "getHealth",
        "tags": ["Health"],
        "summary": "Health check",
        "description": "200 after a round trip to the database. No authentication, no rate limit.",
        "security": [],
        "responses": {
            "200": {
                "description": "The server and its database answer.",
                "headers": _headers(v1=False),
                "content": _json("HealthResponse"),
            },
            "500": error({"INTERNAL_ERROR": ERRORS["INTERNAL_ERROR"]}, v1=False),
            "503": error({"SERVICE_UNAVAILABLE": "the database cannot be reached"}, v1=False),
        },
    }
    return {"/healthz": {"get": health}, "/files/{token}/{name}": {"get": _file()}}


def _file() -> Doc:
    media = ("image/png", "image/jpeg", "image/webp", "video/mp4")
    content = {name: {"schema": {"type": "string", "contentMediaType": name}} for name in media}
    return {
        "operationId": "getFile",
        "tags": ["Files"],
        "summary": "An output file",
        "description": "A task's output file, at the URL in its `output.urls`. The URL is the "
        "credential: no authentication, no rate limit. Range requests are served (local file "
        "store); an S3-compatible store's files are a redirect to a presigned URL.",
        "security": [],
        "parameters": [
            {
                "name": "token",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
                "description": "The task's unguessable file token.",
            },
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": r"^[0-9]{1,3}\.(png|jpg|webp|mp4)$"},
                "description": "The output's index and extension.",
                "example": "0.png",
            },
        ],
        "responses": {
            "200": {
                "description": "The file (cacheable for ever: it never changes).",
                "headers": _headers("Cache-Control", v1=False),
                "content": content,
            },
            "206": {
                "description": "The range the request's `Range` header asked for.",
                "headers": _headers("Cache-Control", v1=False),
                "content": content,
            },
            "302": {
                "description": "To a presigned URL of the file, made for this request "
                "(S3-compatible store; cacheable for 5 minutes).",
                "headers": _headers(v1=False),
            },
            "404": error({"NOT_FOUND": "`File not found`"}, v1=False),
            "500": error({"INTERNAL_ERROR": ERRORS["INTERNAL_ERROR"]}, v1=False),
            "503": error({"SERVICE_UNAVAILABLE": "the file store did not answer; retry"}, v1=False),
        },
    }


# --------------------------------------------------------------------------- components


def _header(description: str, schema: Doc) -> Doc:
    return {"description": description, "schema": schema}


def _response_headers() -> dict[str, Doc]:
    integer = {"type": "integer", "minimum": 0}
    limit_of = "the limit (IP, API key, or the API key's on a VideoGen endpoint group) with the "
    limit_of += "fewest requests left"
    headers = {
        "X-Request-ID": _header(
            "The request's id: the client's own `X-Request-ID` (its first 64 bytes), else a new "
            "one. On every answer.",
            {"type": "string", "minLength": 1, "maxLength": 64},
        )
        | {"required": True},
        "RateLimit-Limit": _header(f"Requests allowed per window by {limit_of}.", integer),
        "RateLimit-Remaining": _header(f"Requests left in the window of {limit_of}.", integer),
        "RateLimit-Reset": _header("Seconds until that window resets.", integer),
        "X-RateLimit-Limit": _header("The same as `RateLimit-Limit`.", integer),
        "X-RateLimit-Remaining": _header("The same as `RateLimit-Remaining`.", integer),
        "X-RateLimit-Reset": _header("The Unix time at which that window resets.", integer),
        "Preference-Applied": _header(
            "`wait=N` when the request sent `Prefer: wait=N` (or `respond-async`: `wait=0`).",
            {"type": "string", "pattern": "^wait=[0-9]+$"},
        ),
        "Idempotent-Replayed": _header(
            "`true` when the answer is the task an earlier request with the same "
            "Idempotency-Key created (nothing new was created or charged).",
            {"type": "string", "enum": ["true"]},
        ),
        "Cache-Control": _header(
            "`public, max-age=31536000, immutable` (a 302: `public, max-age=300`).",
            {"type": "string"},
        ),
    }
    for name in headers:
        if name.startswith(("RateLimit", "X-RateLimit")):
            headers[name]["description"] += (
                " On every /v1 answer that a limit counted: the VideoGen API's hourly limits per "
                "endpoint group are always on; the others unless both are off. None while their "
                "Redis cannot be reached."
            )
    return headers


def _request_schema(catalog: Catalog) -> Doc:
    """The server's own request model (``api.schemas``), with descriptions and URL syntax."""
    schema: Doc = generate_model(catalog.names).model_json_schema()
    schema.pop("title", None)
    properties: dict[str, Doc] = schema["properties"]
    if "const" in properties["model"]:  # a catalog of one model
        properties["model"]["enum"] = [properties["model"].pop("const")]
    for name, prop in properties.items():
        prop.pop("title", None)
        if name in FIELD_DOCS:
            prop["description"] = FIELD_DOCS[name]
    _url_syntax(properties["webhook_url"], max_length=2048)
    image_urls = next(s for s in properties["image_urls"]["anyOf"] if s.get("type") == "array")
    _url_syntax(image_urls["items"], max_length=65536)
    schema["description"] = "What to make. Unknown fields are ignored."
    return schema


def _url_syntax(schema: Doc, max_length: int) -> None:
    string = next((s for s in schema.get("anyOf", [schema]) if s.get("type") == "string"), schema)
    string["pattern"] = wire.URL
    string["maxLength"] = max_length


FIELD_DOCS = {
    "model": "One of this server's models (see the operation's description).",
    "prompt": "What to make: 1 to 2000 characters.",
    "negative_prompt": "What to avoid: at most 1000 characters.",
    "num_outputs": "How many images (or videos) to make, from 1 to 4; the price is per output.",
    "duration": "Video models: seconds of video, 1 to 60 (the providers of a model may take "
    "fewer values; Veo: 4, 6 or 8). Ignored by image models.",
    "aspect_ratio": "`16:9` or `9:16`.",
    "resolution": "`1k`, `2k` or `4k`: the long side is 1024, 2048 or 4096 pixels (videos: 720p, "
    "1080p, 2160p). When no provider of the model makes that size, the nearest one is made "
    "(`output.resolution` says which).",
    "image_urls": "Reference images, at most 9 http(s) URLs: with one or more, an image task "
    "is an `image_edit`. Each is fetched by the server through its outbound URL policy.",
    "webhook_url": "An http(s) URL, at most 2048 characters, POSTed the task's end "
    "(`task.completed`, `task.failed`, `task.cancelled`) with the Egg API's headers "
    "(`X-EggAPI-Timestamp`, `X-EggAPI-Signature`) and the Standard Webhooks ones (`webhook-id`, "
    "`webhook-timestamp`, `webhook-signature`), signed with the account's webhook secret (see "
    "`GET /v1/tasks/{task_id}/webhooks`). Checked at submit against the server's outbound URL "
    "policy (see 400).",
}


def _schemas(catalog: Catalog) -> Doc:
    schemas = {"GenerateRequest": _request_schema(catalog)} | wire.component_schemas()
    codes = "\n".join(f"- `{code}`: {meaning}" for code, meaning in ERRORS.items())
    schemas["Error"]["properties"]["code"]["description"] = "What went wrong:\n\n" + codes
    return schemas


def _components(catalog: Catalog) -> Doc:
    return {
        "schemas": _schemas(catalog),
        "parameters": _parameters()
        | {
            "IdempotencyKey": {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": wire.IDEMPOTENCY_KEY},
                "description": "1 to 255 printable ASCII characters (a UUID per logical request "
                "is right); kept 24 hours per account. The same key and body answer with the "
                "task the first request created (`Idempotent-Replayed: true`), creating and "
                "charging nothing; the same key with another body is 422 IDEMPOTENCY_MISMATCH; "
                "while the first request with the key is still being handled, 409 CONFLICT. "
                "A submit that fails does not use up its key. Any other value is 400 "
                "BAD_REQUEST.",
                "example": "9b2f6c1e-6a7d-4f0e-9a51-3c7d2f8e4b10",
            }
        },
        "headers": _response_headers(),
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "hk_ followed by 40 letters and digits",
                "description": "`Authorization: Bearer hk_...`: an API key, made with "
                "`hatchery keys create EMAIL` (shown once) or on the dashboard's API keys page. "
                "Every /v1 route takes one.",
            },
            "dashboardSession": {
                "type": "apiKey",
                "in": "cookie",
                "name": "hatchery_session",
                "description": "A browser signed in to the dashboard (`/dashboard`) may call "
                "every /v1 route with its session cookie instead of a key, as the dashboard's "
                "playground does; a request that changes something (POST, DELETE) must also "
                "send the session's CSRF token as `X-CSRF-Token` (403 without it). Tasks made "
                "this way have no API key.",
            },
        },
    }


DESCRIPTION = """\
A self-hosted server for asynchronous image, video and audio generation, wire-compatible with \
the Egg API: submit a task (`POST /v1/generate`, answered 202 at once), then poll it, wait for \
it (`Prefer: wait=N`), stream its status changes, or get a signed webhook when it ends.

It also serves the VideoGen API on the same keys and the same engine: its ten tools and their \
executions (tag *VideoGen: Tools*), its voices and avatar presenters (*VideoGen: Resources*) and \
its files (*VideoGen: Files*). Out of the box every tool runs offline on classical algorithms, \
none of them an AI model.

**Envelope.** Every answer of the Egg API, errors included, is `{"data": ..., "error": null}` or \
`{"data": null, "error": {"code": "...", "message": "..."}}`. The VideoGen API answers its \
objects as they are and its errors as `{"message": "...", "code": "..."}`, and so do the object \
URLs (tag *Files*, but for `/files/...`). An unknown route is 404 NOT_FOUND; a method a route \
does not take is 405 BAD_REQUEST with an `Allow` header (`Method DELETE is not allowed on \
/v1/tasks; use GET`).

**Authentication.** Every `/v1` route needs `Authorization: Bearer <API key>`.

**Rate limits.** Requests to `/v1/*` are counted per client IP ({ip}) and per API key ({key}, or \
the account's own limit) in fixed windows, and the VideoGen endpoints also per API key and \
endpoint group, per hour (each operation says its limit); over a limit the answer is 429 \
(`RATE_LIMITED`, `rate_limited`) with `Retry-After`. Every `/v1` answer carries the \
`RateLimit-*` and `X-RateLimit-*` headers of the tightest limit that counted it.

**Request ids.** Every answer carries `X-Request-ID` (the client's own, if it sent one).
"""


def openapi_document(catalog: Catalog, settings: Settings) -> Doc:
    """The OpenAPI document of this server's API, for its catalog and settings."""
    paths: Doc = {"/v1/generate": {"post": _generate(catalog, settings)}}
    paths |= _task_operations()
    paths["/v1/tasks/{task_id}/events"] = {"get": _events()}
    paths |= _task_webhooks(settings)
    paths |= _list_operations()
    paths["/v1/account"] = {"get": _account()}
    paths |= _public_operations()
    # The VideoGen API's part builds on this module's helpers: imported once this one is loaded.
    from hatchery.api.admin import openapi as admin
    from hatchery.api.videogen import openapi as videogen

    dialect = videogen.document(settings, catalog)
    paths |= dialect["paths"]
    operator = admin.document(settings)
    paths |= operator["paths"]
    components = _components(catalog)
    components["schemas"] |= dialect["components"]["schemas"] | operator["components"]["schemas"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hatchery",
            "version": __version__,
            "description": DESCRIPTION.replace("{ip}", settings.rate_limit_ip).replace(
                "{key}", settings.rate_limit
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": name, "description": text}
            for name, text in (
                ("Tasks", "Submit, poll, stream, cancel and list generation tasks."),
                ("Usage", "What the account was charged for."),
                ("Account", "Balance and usage."),
                ("Health", "Liveness."),
                (
                    "Files",
                    "Output files, and the object URLs of files: signed downloads and "
                    "uploads, and streams.",
                ),
                *videogen.TAGS,
                *admin.TAGS,
            )
        ],
        "paths": paths,
        "components": components,
    }


def served_document(state: Any, catalog: Catalog, settings: Settings) -> Doc:
    """The document ``GET /openapi.json`` answers: built on first use and kept on the app's
    ``state`` while the catalog's routes stay as they are (the dashboard's playground builds
    its forms from the same one)."""
    built: tuple[int, Doc] | None = getattr(state, "openapi", None)
    if built is None or built[0] != catalog.version:  # made again when the routes change
        built = catalog.version, openapi_document(catalog, settings)
        state.openapi = built
    return built[1]
