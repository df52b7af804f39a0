"""OTLP/HTTP payloads (pure): traces and metrics from apps, decoded into rows to store.

Apps export with any OpenTelemetry SDK to ``<base>/v1/traces`` and ``<base>/v1/metrics``,
as binary protobuf (``application/x-protobuf``) or OTLP/JSON (``application/json``). OTLP/JSON
differs from protobuf's canonical JSON in one way that matters: trace and span ids are hex,
not base64 — :func:`_ids_to_base64` converts them before parsing.

Rows are plain dicts for ``telemetry_spans`` and ``telemetry_metric_points``; a span's identity
is ``(trace_id, span_id)``, a data point's a digest of metric name, kind, time, attributes and
resource — so a retried export stores nothing twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from mobileplane.services.telemetry.events import clean_json, digest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id"})


class OtlpError(ValueError):
    """The payload is not an OTLP export request; the message says why."""


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise OtlpError("Content-Type must be application/x-protobuf or application/json")


def _ids_to_base64(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in _ID_FIELDS and isinstance(v, str) and v:
                try:
                    out[k] = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError:
                    raise OtlpError(f"{k} must be hex") from None
            else:
                out[k] = _ids_to_base64(v)
        return out
    if isinstance(value, list):
        return [_ids_to_base64(v) for v in value]
    return value


def _parse(body: bytes, kind: str, message: Any) -> Any:
    if kind == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as e:
            raise OtlpError(f"body is not a valid protobuf export request ({e})") from None
        return message
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise OtlpError(f"body is not valid JSON ({e})") from None
    try:
        json_format.ParseDict(_ids_to_base64(data), message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error) as e:
        raise OtlpError(f"body is not an OTLP/JSON export request ({e})") from None
    return message


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs}


def _time(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos / 1e9, UTC)


def decode_traces(body: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """Span rows (without ``project_id``)."""
    request = _parse(body, media_type(content_type), ExportTraceServiceRequest())
    rows = []
    for resource_spans in request.resource_spans:
        resource = clean_json(attributes(resource_spans.resource.attributes))
        service = resource.get("service.name")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise OtlpError("span with a trace id not of 16 bytes or a span id not of 8")
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                rows.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "name": clean_json(span.name)[:500] or "<unnamed>",
                        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower(),
                        "service_name": str(service)[:200] if service is not None else None,
                        "start": _time(start),
                        "duration_ms": max(0, end - start) / 1e6,
                        "status": Status.StatusCode.Name(span.status.code)
                        .removeprefix("STATUS_CODE_")
                        .lower(),
                        "attributes": clean_json(attributes(span.attributes)),
                        "resource": resource,
                    }
                )
    return rows


def _point_row(
    name: str,
    kind: str,
    unit: str,
    point: Any,
    value: float | None,
    data: Mapping[str, Any],
    resource: Mapping[str, Any],
) -> dict[str, Any]:
    attrs = clean_json(attributes(point.attributes))
    identity = json.dumps(
        [name, kind, point.time_unix_nano, attrs, resource], sort_keys=True, default=str
    )
    return {
        "digest": digest(identity.encode()),
        "name": name,
        "kind": kind,
        "unit": unit,
        "time": _time(point.time_unix_nano),
        "value": value,
        "data": dict(data),
        "attributes": attrs,
        "resource": dict(resource),
    }


def _number(point: Any) -> float | None:
    which = point.WhichOneof("value")
    return None if which is None else float(getattr(point, which))


def decode_metrics(body: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """Metric data-point rows (without ``project_id``)."""
    request = _parse(body, media_type(content_type), ExportMetricsServiceRequest())
    rows: list[dict[str, Any]] = []
    for resource_metrics in request.resource_metrics:
        resource = clean_json(attributes(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                name, unit = clean_json(metric.name)[:255], clean_json(metric.unit)[:64]
                kind = metric.WhichOneof("data")
                if kind in ("gauge", "sum"):
                    container = getattr(metric, kind)
                    extra: dict[str, Any] = {}
                    if kind == "sum":
                        extra = {
                            "monotonic": container.is_monotonic,
                            "temporality": int(container.aggregation_temporality),
                        }
                    for point in container.data_points:
                        rows.append(
                            _point_row(name, kind, unit, point, _number(point), extra, resource)
                        )
                elif kind == "histogram":
                    for point in metric.histogram.data_points:
                        data = {
                            "count": point.count,
                            "sum": point.sum,
                            "bucket_counts": list(point.bucket_counts),
                            "explicit_bounds": list(point.explicit_bounds),
                            "temporality": int(metric.histogram.aggregation_temporality),
                        }
                        rows.append(_point_row(name, kind, unit, point, None, data, resource))
                elif kind in ("exponential_histogram", "summary"):
                    for point in getattr(metric, kind).data_points:
                        data = json_format.MessageToDict(point)
                        data.pop("attributes", None)
                        rows.append(_point_row(name, kind, unit, point, None, data, resource))
    return rows


def success(kind: str, metrics: bool) -> tuple[bytes, str]:
    """The OTLP success response in the request's encoding."""
    message: Any = ExportMetricsServiceResponse() if metrics else ExportTraceServiceResponse()
    if kind == PROTOBUF:
        return message.SerializeToString(), PROTOBUF
    return b"{}", JSON
