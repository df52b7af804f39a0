"""Reading items (ids, times, users) and OTLP payloads (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from mobileplane.services.telemetry.events import (
    ItemError,
    clean_json,
    event_facts,
    event_id,
    transaction_values,
    user_key,
)
from mobileplane.services.telemetry.otlp import OtlpError, decode_metrics, decode_traces, media_type

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "header", "expected"),
    [
        ({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}, {}, "9ec79c33ec9942ab8353589fcb2e04dc"),
        (
            {"event_id": "9EC79C33-EC99-42AB-8353-589FCB2E04DC"},
            {},
            "9ec79c33ec9942ab8353589fcb2e04dc",
        ),
        ({}, {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}, "9ec79c33ec9942ab8353589fcb2e04dc"),
    ],
)
def test_event_id(payload: dict[str, str], header: dict[str, str], expected: str) -> None:
    assert event_id(payload, header, b"raw") == expected


def test_event_id_derived_and_refused() -> None:
    assert event_id({}, {}, b"a") == event_id({}, {}, b"a") != event_id({}, {}, b"b")
    with pytest.raises(ItemError, match="UUID"):
        event_id({"event_id": "xyz"}, {}, b"")


@pytest.mark.parametrize(
    ("user", "key"),
    [
        ({"id": "42", "email": "a@b.c"}, "id:42"),
        ({"id": 42}, "id:42"),
        ({"email": "a@b.c", "ip_address": "1.2.3.4"}, "email:a@b.c"),
        ({"ip_address": "1.2.3.4"}, "ip_address:1.2.3.4"),
        ({}, None),
        ("nope", None),
    ],
)
def test_user_key(user: object, key: str | None) -> None:
    assert user_key({"user": user}) == key


def test_event_facts() -> None:
    facts = event_facts(
        {
            "timestamp": NOW.timestamp() + 0.5,
            "level": "fatal",
            "release": "app@1",
            "exception": {"values": [{"type": "E", "mechanism": {"handled": False}}]},
        },
        {},
        b"x",
        NOW,
    )
    assert facts.timestamp == datetime(2026, 11, 25, 12, 0, 0, 500000, tzinfo=UTC)
    assert (facts.level, facts.release, facts.handled) == ("fatal", "app@1", False)
    with pytest.raises(ItemError, match="level"):
        event_facts({"level": "loud"}, {}, b"", NOW)
    with pytest.raises(ItemError, match="release must be a string"):
        event_facts({"release": 3}, {}, b"", NOW)


def test_transaction_values() -> None:
    values = transaction_values(
        {
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "transaction": "/checkout",
            "start_timestamp": "2026-11-25T12:00:00Z",
            "timestamp": "2026-11-25T12:00:01.5Z",
            "contexts": {"trace": {"trace_id": "AB" * 16, "op": "http.server", "status": "ok"}},
            "spans": [{}, {}],
        },
        {},
        b"",
        NOW,
    )
    assert values["duration_ms"] == 1500
    assert values["trace_id"] == "ab" * 16
    assert values["span_count"] == 2
    with pytest.raises(ItemError, match="ends before"):
        transaction_values({"start_timestamp": 10, "timestamp": 5}, {}, b"", NOW)


def test_clean_json() -> None:
    assert clean_json({"a\x00": ["x\x00y", "\ud800", 1]}) == {"a\ufffd": ["x\ufffdy", "\ufffd", 1]}
    json.dumps(clean_json({"k": "\udfff"})).encode("utf-8")


def _traces() -> ExportTraceServiceRequest:
    span = Span(
        trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
        name="app start",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_764_072_000_000_000_000,
        end_time_unix_nano=1_764_072_000_250_000_000,
        attributes=[KeyValue(key="screen", value=AnyValue(string_value="home"))],
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={
                    "attributes": [KeyValue(key="service.name", value=AnyValue(string_value="ios"))]
                },
                scope_spans=[ScopeSpans(spans=[span])],
            )
        ]
    )


def test_traces_protobuf_and_json_agree() -> None:
    request = _traces()
    from_proto = decode_traces(request.SerializeToString(), "application/x-protobuf")
    otlp_json = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "ios"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "app start",
                                "kind": 3,
                                "startTimeUnixNano": "1764072000000000000",
                                "endTimeUnixNano": "1764072000250000000",
                                "attributes": [{"key": "screen", "value": {"stringValue": "home"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    from_json = decode_traces(json.dumps(otlp_json).encode(), "application/json; charset=utf-8")
    assert from_proto == from_json
    (row,) = from_proto
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert row["kind"] == "client" and row["duration_ms"] == 250
    assert row["service_name"] == "ios" and row["attributes"] == {"screen": "home"}


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", "not a valid protobuf"),
        (b"{", "application/json", "not valid JSON"),
        (b'{"resourceSpans": 3}', "application/json", "not an OTLP/JSON"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}',
            "application/json",
            "must be hex",
        ),
    ],
)
def test_bad_otlp(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(OtlpError, match=reason):
        decode_traces(body, content_type)


def test_media_type_and_metrics() -> None:
    with pytest.raises(OtlpError):
        media_type("text/plain")
    body = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "screen.render",
                                "unit": "ms",
                                "gauge": {
                                    "dataPoints": [
                                        {"timeUnixNano": "1764072000000000000", "asDouble": 16.5}
                                    ]
                                },
                            },
                            {
                                "name": "net.latency",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "1764072000000000000",
                                            "count": "3",
                                            "sum": 30,
                                            "bucketCounts": ["1", "2"],
                                            "explicitBounds": [10],
                                        }
                                    ],
                                },
                            },
                        ]
                    }
                ]
            }
        ]
    }
    gauge, histogram = decode_metrics(json.dumps(body).encode(), "application/json")
    assert (gauge["name"], gauge["value"], gauge["kind"]) == ("screen.render", 16.5, "gauge")
    assert histogram["data"]["count"] == 3 and histogram["data"]["bucket_counts"] == [1, 2]
    assert gauge["digest"] != histogram["digest"]
