"""Submitting a task: parse and validate the body, check outbound URLs, price it, queue it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from hatchery.api.schemas import GenerateBase, describe, generate_model, go_message
from hatchery.domain.catalog import Catalog
from hatchery.domain.tasks import Task, new_task_id
from hatchery.errors import BadRequest, ValidationFailed
from hatchery.net.guard import URLRefused, check_url
from hatchery.services import Services
from hatchery.store.accounts import Account


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
        allow = self.services.settings.allow_private_urls
        targets = (
            [("WebhookURL", "webhook_url", request.webhook_url)] if request.webhook_url else []
        )
        targets += [
            ("ImageURLs", f"image_urls[{i}]", url) for i, url in enumerate(request.image_urls or ())
        ]
        for go_name, field, url in targets:
            try:
                await check_url(url, allow_private=allow)
            except URLRefused as exc:
                raise ValidationFailed(
                    f"{go_message(go_name, 'url')} ({field} is not allowed: {exc})"
                ) from None

    async def submit(self, account: Account, raw: bytes) -> Task:
        request = self.parse(raw)
        await self.check_urls(request)
        model = self.catalog.models[request.model]
        params: dict[str, Any] = request.model_dump(exclude={"model", "webhook_url"})
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
