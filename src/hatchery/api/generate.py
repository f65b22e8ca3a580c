"""Submitting a task: read and validate the body, check outbound URLs, price it, queue it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from hatchery.api.schemas import GenerateBase, describe, generate_model, go_message
from hatchery.domain.catalog import Catalog, Model
from hatchery.domain.tasks import Task, new_task_id
from hatchery.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    ValidationFailed,
)
from hatchery.net.guard import URLRefused, check_url
from hatchery.providers.base import Job
from hatchery.providers.registry import servable
from hatchery.services import Services
from hatchery.settings import Settings
from hatchery.store.accounts import Account

URL_CHECK_TIMEOUT = 10.0


async def read_body(request: Request) -> bytes:
    """The request body, refused as soon as it is known to exceed HATCHERY_MAX_BODY_BYTES, or
    once it has taken longer than HATCHERY_BODY_TIMEOUT to arrive."""
    settings: Settings = request.app.state.services.settings
    limit, timeout = settings.max_body_bytes, settings.body_timeout
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    try:
        async with asyncio.timeout(timeout):
            return await _receive(request, limit)
    except TimeoutError:
        raise RequestTimeout(f"Request body did not arrive within {timeout:g} s") from None


async def _receive(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than {limit} bytes")


class Submitter:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.catalog: Catalog = services.catalog
        self.schema = generate_model(self.catalog.names)

    def parse(self, raw: bytes) -> GenerateBase:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        try:
            return self.schema.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed(describe(exc, self.catalog.names)) from None

    async def check_urls(self, request: GenerateBase) -> None:
        """Resolve every outbound URL at once, within a deadline; refuse any that is not allowed."""
        targets = (
            [("WebhookURL", "webhook_url", request.webhook_url)] if request.webhook_url else []
        )
        targets += [
            ("ImageURLs", f"image_urls[{i}]", url) for i, url in enumerate(request.image_urls or ())
        ]
        try:
            async with asyncio.timeout(URL_CHECK_TIMEOUT):
                await asyncio.gather(*(self._check(*target) for target in targets))
        except TimeoutError:
            raise ServiceUnavailable(
                "Resolving the host names of webhook_url / image_urls timed out; try again"
            ) from None

    async def _check(self, go_name: str, field: str, url: str) -> None:
        try:
            await check_url(url, allow_private=self.services.settings.allow_private_urls)
        except URLRefused as exc:
            raise ValidationFailed(
                f"{go_message(go_name, 'url')} ({field} is not allowed: {exc})"
            ) from None

    def check_servable(self, model: Model, params: dict[str, Any]) -> None:
        """Refuse values none of the model's providers can make, before anything is queued."""
        job = Job.from_params("", model.name, model.type.name.lower(), params)
        usable, why = servable(model, self.services.providers, job)
        if not usable:
            raise ValidationFailed(f"{model.name} cannot make this request: {why}")

    async def submit(self, account: Account, raw: bytes) -> Task:
        request = self.parse(raw)
        model = self.catalog.models[request.model]
        params: dict[str, Any] = request.model_dump(exclude={"model", "webhook_url"})
        self.check_servable(model, params)
        await self.check_urls(request)
        price = model.price(num_outputs=request.num_outputs, duration=request.duration)
        return await self.services.queue.submit(
            {
                "id": new_task_id(),
                "account_id": account.id,
                "model": model.name,
                "type": model.type.value,
                "params": params,
                "webhook_url": request.webhook_url,
                "price_micros": price,
            }
        )
