"""Submitting a task: read and validate the body, check outbound URLs, price it, queue it; with an
Idempotency-Key, once per key (``api.idempotency``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from hatchery.api import idempotency
from hatchery.api.schemas import GenerateBase, describe, generate_model, go_message
from hatchery.domain.catalog import Catalog, Model
from hatchery.domain.tasks import Task, new_task_id, task_type
from hatchery.errors import (
    BadRequest,
    NotFound,
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
from hatchery.store import tasks as task_store
from hatchery.store.accounts import Account
from hatchery.store.idempotency import Claimed

URL_CHECK_TIMEOUT = 10.0


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes
    (HATCHERY_MAX_BODY_BYTES by default), or once it has taken longer than HATCHERY_BODY_TIMEOUT
    to arrive."""
    settings: Settings = request.app.state.services.settings
    limit = settings.max_body_bytes if limit is None else limit
    timeout = settings.body_timeout
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


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; BadRequest saying why it is not."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


class Submitter:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.catalog: Catalog = services.catalog
        self._schema = (self.catalog.version, generate_model(self.catalog.names))

    @property
    def schema(self) -> type[GenerateBase]:
        """The request's schema, for the catalog's models (made again when its routes change)."""
        version, schema = self._schema
        if version != self.catalog.version:
            self._schema = version, schema = (
                self.catalog.version,
                generate_model(self.catalog.names),
            )
        return schema

    def validate(self, body: dict[str, Any]) -> GenerateBase:
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
        if not targets:
            return
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

    def check_servable(self, model: Model, params: dict[str, Any]) -> str:
        """Refuse values none of the model's providers can make, before anything is queued; the
        provider that will be asked first (the one a price rule may name)."""
        job = Job.from_params("", model.name, model.type.name.lower(), params)
        usable, why = servable(model, self.services.providers, job)
        if not usable:
            raise ValidationFailed(f"{model.name} cannot make this request: {why}")
        return usable[0]

    async def submit(
        self, account: Account, raw: bytes, key: str | None = None
    ) -> tuple[Task, bool]:
        """The task the body asks for, and whether it is one an earlier request with the same
        Idempotency-Key created (then nothing new is created or charged)."""
        body = json_object(raw)
        request = self.validate(body)
        if key is None:
            return await self._queue(account, request), False
        return await idempotency.once(
            self.services.queue,
            account.id,
            key,
            body,
            lambda claimed: self._queue(account, request, claimed),
            lambda task_id: self._original(account, task_id),
        )

    async def _original(self, account: Account, task_id: str) -> Task:
        task = await task_store.read(self.services.db.driver, task_id, account.id)
        if task is None:  # tasks are never deleted; this would be a broken database
            raise NotFound(f"Task not found: {task_id}")
        return task

    async def _queue(
        self, account: Account, request: GenerateBase, key: tuple[str, Claimed] | None = None
    ) -> Task:
        model = self.catalog.models.get(request.model)
        if model is None:  # taken out of the routes since the request was read
            raise ValidationFailed(
                f"{go_message('Model', 'oneof')} (model must be one of: "
                f"{', '.join(self.catalog.names)})"
            )
        params: dict[str, Any] = request.model_dump(exclude={"model", "webhook_url"})
        first = self.check_servable(model, params)
        await self.check_urls(request)
        quote = model.quote({**params, "provider": first})
        return await self.services.queue.submit(
            {
                "id": new_task_id(),
                "account_id": account.id,
                "api_key": account.api_key,
                "model": model.name,
                "type": task_type(model.type, params).value,
                "params": params,
                "webhook_url": request.webhook_url,
                "price_micros": quote.total_micros,
                "units": quote.units,
            },
            key,
        )
