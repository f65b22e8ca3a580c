"""One call to a provider (submit, poll, cancel), timed and counted in the metrics
(``hatchery_upstream_calls_total``, ``hatchery_upstream_call_duration_seconds``) and, with
tracing on, a client span: what the worker's runner and the API's cancel both make."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from hatchery.observe import metrics, tracing

T = TypeVar("T")


async def call(provider: str, operation: str, awaitable: Awaitable[T]) -> T:
    started, ok = time.perf_counter(), False
    attributes = {"hatchery.provider": provider}
    try:
        with tracing.span(f"provider.{operation}", kind=tracing.CLIENT, attributes=attributes):
            result = await awaitable
        ok = True
        return result
    finally:
        metrics.upstream_call(provider, operation, ok, time.perf_counter() - started)
