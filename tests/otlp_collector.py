"""An OpenTelemetry collector for tests: a real HTTP server on 127.0.0.1 taking OTLP/HTTP trace
exports (``POST /v1/traces``, protobuf), and the spans it received, decoded."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.helpers import LocalHTTPServer

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any]  # service.name, hatchery.role...
    error: bool


def _value(value: AnyValue) -> Any:
    field = value.WhichOneof("value")
    return getattr(value, field) if field else None


def _attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


class OtlpCollector:
    def __init__(self) -> None:
        answer = ExportTraceServiceResponse().SerializeToString()
        self.server = LocalHTTPServer(
            lambda path, method: (200, {"Content-Type": "application/x-protobuf"}, answer)
        )

    @property
    def endpoint(self) -> str:
        return self.server.url("").rstrip("/")

    def spans(self) -> list[Span]:
        found: list[Span] = []
        for received in list(self.server.received):
            assert received.path == "/v1/traces", received.path
            body = received.body
            if received.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found += [_span(s, resource) for s in scope_spans.spans]
        return found

    def close(self) -> None:
        self.server.close()


def _span(span: Any, resource: dict[str, Any]) -> Span:
    return Span(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=KINDS.get(span.kind, str(span.kind)),
        attributes=_attributes(span.attributes),
        resource=resource,
        error=span.status.code == 2,
    )
