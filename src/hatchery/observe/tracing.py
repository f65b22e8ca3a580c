"""OpenTelemetry traces: off unless ``HATCHERY_OTLP_ENDPOINT`` names an OTLP/HTTP collector.

When on, a process makes spans for each HTTP request (continuing a client's ``traceparent``),
each task claim, each task's run, each provider call, each object store operation and each
webhook delivery, and exports them in batches from a thread of the SDK's. The submit's trace
context is stored on the task (``tasks.trace_context``) and a webhook message's on its outbox
row, so the worker's spans and the delivery's continue the trace of the request that queued the
task, in whichever process they run.

When off, ``span`` yields None at the cost of one check and nothing is imported from the SDK.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hatchery.observe import logs

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from hatchery.settings import Settings

log = logging.getLogger("hatchery.tracing")

_tracer: Tracer | None = None
_provider: TracerProvider | None = None

SERVER, CLIENT, CONSUMER, INTERNAL = "server", "client", "consumer", "internal"


def configure(settings: Settings, *, role: str) -> bool:
    """Start exporting spans if an OTLP endpoint is set (``role``: api, worker...); whether on."""
    global _tracer, _provider
    if not settings.otlp_endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from hatchery import __version__

    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": __version__,
            "hatchery.role": role,
        }
    )
    sampler = ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))
    provider = TracerProvider(resource=resource, sampler=sampler)
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=settings.otlp_header_pairs())
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    _provider, _tracer = provider, provider.get_tracer("hatchery", __version__)
    log.info("tracing on: spans go to %s", endpoint)
    return True


def flush() -> None:
    """Export the spans ended so far (an app's shutdown: uvicorn then ends the process by the
    signal it caught, before ``shutdown`` would run)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def shutdown() -> None:
    """Export what is left and stop (at the process's end)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


def _kind(kind: str) -> Any:
    from opentelemetry.trace import SpanKind

    return {
        SERVER: SpanKind.SERVER,
        CLIENT: SpanKind.CLIENT,
        CONSUMER: SpanKind.CONSUMER,
    }.get(kind, SpanKind.INTERNAL)


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: str = INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: str | None = None,
    start: datetime | None = None,
    root: bool = False,
) -> Iterator[Span | None]:
    """A span around the block: the child of a stored or received ``parent`` traceparent, else
    (``root``) of nothing, else of the current span; ``start`` backdates it. None (and nothing
    done) when tracing is off. An exception leaving the block is recorded on it."""
    if _tracer is None:
        yield None
        return
    context = extract(parent) if parent else _empty() if root else None
    start_time = int(start.timestamp() * 1e9) if start else None
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with _tracer.start_as_current_span(
        name, context=context, kind=_kind(kind), attributes=attrs, start_time=start_time
    ) as current:
        token = logs.TRACE_ID.set(format(current.get_span_context().trace_id, "032x"))
        try:
            yield current
        finally:
            logs.TRACE_ID.reset(token)


def _empty() -> Context:
    from opentelemetry.context import Context

    return Context()


def carrier() -> str | None:
    """The current span's W3C ``traceparent``, to store beside what continues it elsewhere; None
    when tracing is off or no span is current."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    headers: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(headers)
    return headers.get("traceparent")


def extract(traceparent: str | None) -> Context | None:
    """The context a stored or received ``traceparent`` names (None if it names none)."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def set_attributes(current: Span | None, **attributes: Any) -> None:
    if current is not None:
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})
