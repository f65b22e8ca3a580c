"""The VideoGen API's webhook endpoint registry (contract §5) and what we add to it: the
delivery log, redelivery, test events, and enabling an endpoint the server disabled.

    POST   /v1/webhooks/endpoints                    201, the signing secret shown this once
    GET    /v1/webhooks/endpoints                    {"endpoints": [...]}, secrets as last 4
    GET    /v1/webhooks/endpoints/{id}               one endpoint
    DELETE /v1/webhooks/endpoints/{id}               204; what still waits for it is not sent
    POST   /v1/webhooks/endpoints/{id}/enable        enabled again after the server disabled it
    POST   /v1/webhooks/endpoints/{id}/test          202, a webhook.test message to it
    GET    /v1/webhooks/deliveries                   the log: ?endpointId, ?toolExecutionId,
                                                     ?fileId, ?limit, ?cursor
    GET    /v1/webhooks/deliveries/{id}              one message with every attempt
    POST   /v1/webhooks/deliveries/{id}/redeliver    202, the same webhook-id again, now
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from hatchery.api import cursor
from hatchery.api.context import services_of
from hatchery.api.videogen.auth import Group, caller
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.api.videogen.schemas import CreateWebhookEndpoint
from hatchery.domain.files import is_file_id
from hatchery.domain.tools import is_execution_id
from hatchery.domain.webhooks import SUBSCRIBABLE, is_delivery_id, is_endpoint_id
from hatchery.errors import BadRequest, InvalidId, ServiceUnavailable, ValidationFailed
from hatchery.net.guard import URLRefused, check_receiver_url
from hatchery.store.endpoints import Endpoint
from hatchery.store.outbox import Logged

router = APIRouter(route_class=VideoGenRoute, tags=["Webhooks"])
CURSOR = "vgw1."
PAGE = 50
URL_CHECK_TIMEOUT = 5.0


def _seconds(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def endpoint_json(endpoint: Endpoint, *, secret: bool = False) -> dict[str, Any]:
    """A ``WebhookEndpoint``; its secret only when it was just made. Ours besides: ``status``
    (``enabled`` or ``disabled``), ``disabledAt`` and ``disabledReason``."""
    return {
        "endpointId": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "createdAt": _seconds(endpoint.created_at),
        "signingSecret": endpoint.secret if secret else None,
        "signingSecretLast4": endpoint.secret[-4:],
        "status": endpoint.status,
        "disabledAt": _seconds(endpoint.disabled_at),
        "disabledReason": endpoint.disabled_reason,
    }


def delivery_json(found: Logged) -> dict[str, Any]:
    return {
        "deliveryId": found.id,
        "webhookId": found.message_id,
        "event": found.event,
        "endpointId": found.endpoint_id,
        "subjectId": found.subject_id,
        "url": found.url,
        "status": found.status,
        "createdAt": _seconds(found.created_at),
        "nextAttemptAt": _seconds(found.next_attempt_at),
        "deliveredAt": _seconds(found.delivered_at),
        "attempts": [
            {
                "attempt": a.attempt,
                "attemptedAt": a.started_at.timestamp(),
                "durationMs": a.duration_ms,
                "statusCode": a.status_code,
                "response": a.response,
                "error": a.error,
            }
            for a in found.attempts
        ],
    }


def check_events(events: list[str]) -> None:
    unknown = [event for event in events if event not in SUBSCRIBABLE]
    if unknown:
        raise ValidationFailed(
            f"events: {unknown[0]!r} is not an event this server sends; choose from "
            f"{', '.join(SUBSCRIBABLE)}"
        )


async def check_endpoint_url(request: Request, url: str) -> None:
    services = services_of(request)
    try:
        async with asyncio.timeout(URL_CHECK_TIMEOUT):
            await check_receiver_url(url, allow_private=services.settings.allow_private_urls)
    except URLRefused as exc:
        raise ValidationFailed(f"url is not allowed: {exc}") from None
    except TimeoutError:
        raise ServiceUnavailable("Resolving the url's host name timed out; try again") from None


def _endpoint_id(value: str) -> str:
    if not is_endpoint_id(value):
        raise InvalidId(f"{value!r} is not a webhook endpoint id; they look like ep_...")
    return value


@router.post("/v1/webhooks/endpoints", status_code=201)
async def create_endpoint(request: Request, body: CreateWebhookEndpoint) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_CHANGE)
    check_events(body.events)
    await check_endpoint_url(request, body.url)
    endpoint = await services.webhooks.create(account.id, body.url, body.events, body.description)
    return JSONResponse(endpoint_json(endpoint, secret=True), status_code=201)


@router.get("/v1/webhooks/endpoints")
async def list_endpoints(request: Request) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_READ)
    found = await services.webhooks.listing(account.id)
    return JSONResponse({"endpoints": [endpoint_json(endpoint) for endpoint in found]})


@router.get("/v1/webhooks/endpoints/{endpointId}")
async def get_endpoint(request: Request, endpointId: str) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_READ)
    endpoint = await services.webhooks.get(account.id, _endpoint_id(endpointId))
    return JSONResponse(endpoint_json(endpoint))


@router.delete("/v1/webhooks/endpoints/{endpointId}", status_code=204)
async def delete_endpoint(request: Request, endpointId: str) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_CHANGE)
    await services.webhooks.delete(account.id, _endpoint_id(endpointId))
    return Response(status_code=204)


@router.post("/v1/webhooks/endpoints/{endpointId}/enable")
async def enable_endpoint(request: Request, endpointId: str) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_CHANGE)
    endpoint = await services.webhooks.enable(account.id, _endpoint_id(endpointId))
    return JSONResponse(endpoint_json(endpoint))


@router.post("/v1/webhooks/endpoints/{endpointId}/test", status_code=202)
async def test_endpoint(request: Request, endpointId: str) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_SEND)
    sent = await services.webhooks.send_test(account.id, _endpoint_id(endpointId))
    return JSONResponse(delivery_json(sent), status_code=202)


def _subject(execution_id: str | None, file_id: str | None) -> str | None:
    if execution_id is not None and file_id is not None:
        raise BadRequest("pass toolExecutionId or fileId, not both")
    if execution_id is not None and not is_execution_id(execution_id):
        raise InvalidId(f"{execution_id!r} is not a tool execution id; they look like vg_exec_...")
    if file_id is not None and not is_file_id(file_id):
        raise InvalidId(f"{file_id!r} is not a file id; they look like vg_file_...")
    return execution_id or file_id


def _before(given: str | None) -> int | None:
    return cursor.position(CURSOR, given, "GET /v1/webhooks/deliveries")


@router.get("/v1/webhooks/deliveries")
async def list_deliveries(
    request: Request,
    endpointId: str | None = None,
    toolExecutionId: str | None = None,
    fileId: str | None = None,
    limit: int | None = Query(None, ge=1, le=200),
    cursor_: str | None = Query(None, alias="cursor"),
) -> Response:
    """The account's webhook messages, newest first, each with every attempt made."""
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_READ)
    subject = _subject(toolExecutionId, fileId)
    endpoint = _endpoint_id(endpointId) if endpointId is not None else None
    found, after = await services.webhooks.log(
        account.id,
        subject_id=subject,
        endpoint_id=endpoint,
        before=_before(cursor_),
        limit=limit or PAGE,
    )
    page = [delivery_json(d) for d in found]
    return JSONResponse({"deliveries": page, **cursor.tail(CURSOR, after)})


def _delivery_id(value: str) -> str:
    if not is_delivery_id(value):
        raise InvalidId(f"{value!r} is not a webhook delivery id; they look like whd_...")
    return value


@router.get("/v1/webhooks/deliveries/{deliveryId}")
async def get_delivery(request: Request, deliveryId: str) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_READ)
    found = await services.webhooks.delivery(account.id, _delivery_id(deliveryId))
    return JSONResponse(delivery_json(found))


@router.post("/v1/webhooks/deliveries/{deliveryId}/redeliver", status_code=202)
async def redeliver(request: Request, deliveryId: str) -> Response:
    """Send the message again now: the same ``webhook-id``, a new timestamp and signature."""
    services = services_of(request)
    account = await caller(services, request, Group.WEBHOOKS_SEND)
    found = await services.webhooks.redeliver(account.id, _delivery_id(deliveryId))
    return JSONResponse(delivery_json(found), status_code=202)
