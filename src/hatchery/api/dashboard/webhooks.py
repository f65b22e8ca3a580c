"""The webhooks page: the Egg API's webhook signing secret, the registered endpoints (the
VideoGen API's registry) and the delivery log, with redelivery.

    GET  /dashboard/webhooks                              the secret (its last 4), the endpoints,
                                                          the log (?endpoint=ep_..., ?cursor=)
    POST /dashboard/webhooks/secret                       generate or rotate the account's secret:
                                                          the page, showing it this once
    POST /dashboard/webhooks/endpoints                    register one (url, events, description):
                                                          the page, showing its secret this once
    POST /dashboard/webhooks/endpoints/{id}/delete        delete it (nothing queued for it is sent)
    POST /dashboard/webhooks/endpoints/{id}/enable        enable one the server disabled
    POST /dashboard/webhooks/endpoints/{id}/test          queue a ``webhook.test`` message to it
    POST /dashboard/webhooks/deliveries/{id}/redeliver    send a message again, now

The account's secret signs each task's own ``webhook_url`` deliveries (``webhooks.signing``);
an endpoint has its own. An endpoint is registered as ``POST /v1/webhooks/endpoints`` registers
one: the same body model, the same checks of its events and of its URL, the same service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api import cursor
from hatchery.api.dashboard.pages import account_page, change_form, redirect, render
from hatchery.api.session import SignedIn
from hatchery.api.videogen.errors import validation_message
from hatchery.api.videogen.schemas import CreateWebhookEndpoint
from hatchery.api.videogen.webhooks import check_endpoint_url, check_events
from hatchery.domain import keys
from hatchery.domain.tasks import is_task_id
from hatchery.domain.tools import is_execution_id
from hatchery.domain.webhooks import SUBSCRIBABLE, is_delivery_id, is_endpoint_id
from hatchery.errors import BadRequest, NotFound, ValidationFailed
from hatchery.services import Services
from hatchery.store import accounts
from hatchery.store.outbox import Attempt, Logged

router = APIRouter()

PAGE = 25
CURSOR = "dwd1."  # the delivery log's cursor on this page
EVENT_FIELD = "event:"  # each event's checkbox is a field of its own: ``event:task.completed``


@dataclass(frozen=True)
class DeliveryRow:
    """A message as the log shows it: its last attempt, and the page of what it is about."""

    delivery: Logged
    last: Attempt | None
    subject_path: str | None


def _row(delivery: Logged) -> DeliveryRow:
    subject = delivery.subject_id
    linked = is_task_id(subject) or is_execution_id(subject)
    last = delivery.attempts[-1] if delivery.attempts else None
    return DeliveryRow(delivery, last, f"/tasks/{subject}" if linked else None)


def _endpoint_filter(given: str | None) -> str | None:
    if given is None or given == "":
        return None
    if not is_endpoint_id(given):
        raise BadRequest(f"{given[:64]!r} is not a webhook endpoint id; they look like ep_...")
    return given


async def _page(
    request: Request,
    services: Services,
    signed: SignedIn,
    status: int = 200,
    **context: Any,
) -> Response:
    account = signed.account
    query = request.query_params if request.method == "GET" else {}
    endpoint_id = _endpoint_filter(query.get("endpoint"))
    before = cursor.position(CURSOR, query.get("cursor"), "/dashboard/webhooks")
    endpoints = await services.webhooks.listing(account.id)
    found, after = await services.webhooks.log(
        account.id, endpoint_id=endpoint_id, before=before, limit=PAGE
    )
    secret = context.get("new_secret") or account.webhook_secret
    return render(
        request,
        "webhooks.html",
        signed,
        status,
        secret_last4=secret[-4:] if secret else None,
        endpoints=endpoints,
        deliveries=[_row(d) for d in found],
        endpoint_filter=endpoint_id,
        older=cursor.pack(CURSOR, after) if after is not None else None,
        paged=before is not None,
        events=SUBSCRIBABLE,
        **context,
    )


@router.get("/webhooks")
async def webhooks_page(request: Request) -> Response:
    services, signed = await account_page(request)
    return await _page(request, services, signed)


@router.post("/webhooks/secret")
async def rotate_secret(request: Request) -> Response:
    """A new secret for the account's per-task webhooks, shown this once; the old one no
    longer signs anything sent from now on."""
    services, signed, _ = await change_form(request)
    secret = keys.new_webhook_secret()
    async with services.db.write() as conn:
        await accounts.set_webhook_secret(conn, signed.account.id, secret)
    return await _page(
        request, services, signed, new_secret=secret, rotated=signed.account.webhook_secret
    )


def _endpoint_body(fields: Mapping[str, str]) -> CreateWebhookEndpoint:
    """The form as the API's body, checked by the API's model."""
    events = [name.removeprefix(EVENT_FIELD) for name in fields if name.startswith(EVENT_FIELD)]
    given = {
        "url": fields.get("url", "").strip(),
        "events": events,
        "description": fields.get("description", "").strip() or None,
    }
    if not events:
        raise ValidationFailed("Choose at least one event to send to the endpoint")
    try:
        return CreateWebhookEndpoint.model_validate(given)
    except ValidationError as exc:
        raise ValidationFailed(validation_message(RequestValidationError(exc.errors()))) from None


@router.post("/webhooks/endpoints")
async def create_endpoint(request: Request) -> Response:
    """Register an endpoint; the page shows its signing secret this once."""
    services, signed, fields = await change_form(request)
    try:
        body = _endpoint_body(fields)
        check_events(body.events)
        await check_endpoint_url(request, body.url)
    except (BadRequest, ValidationFailed) as exc:
        return await _page(request, services, signed, 400, problem=exc.message, form=fields)
    endpoint = await services.webhooks.create(
        signed.account.id, body.url, body.events, body.description
    )
    return await _page(request, services, signed, new_endpoint=endpoint)


def _endpoint_id(value: str) -> str:
    if not is_endpoint_id(value):
        raise NotFound(f"Webhook endpoint not found: {value[:64]}")
    return value


@router.post("/webhooks/endpoints/{endpoint_id}/delete")
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    services, signed, _ = await change_form(request)
    await services.webhooks.delete(signed.account.id, _endpoint_id(endpoint_id))
    return redirect("/webhooks", notice=f"Endpoint {endpoint_id} is deleted")


@router.post("/webhooks/endpoints/{endpoint_id}/enable")
async def enable_endpoint(request: Request, endpoint_id: str) -> Response:
    services, signed, _ = await change_form(request)
    endpoint = await services.webhooks.enable(signed.account.id, _endpoint_id(endpoint_id))
    return redirect("/webhooks", notice=f"Endpoint {endpoint.id} is enabled again")


@router.post("/webhooks/endpoints/{endpoint_id}/test")
async def test_endpoint(request: Request, endpoint_id: str) -> Response:
    services, signed, _ = await change_form(request)
    await services.webhooks.send_test(signed.account.id, _endpoint_id(endpoint_id))
    return redirect("/webhooks", notice="A webhook.test message is on its way")


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, delivery_id: str) -> Response:
    services, signed, _ = await change_form(request)
    if not is_delivery_id(delivery_id):
        raise NotFound(f"Webhook delivery not found: {delivery_id[:64]}")
    again = await services.webhooks.redeliver(signed.account.id, delivery_id)
    return redirect("/webhooks", notice=f"The {again.event} message is sent again")
