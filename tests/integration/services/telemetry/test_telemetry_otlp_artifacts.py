"""OTLP/HTTP from the real OpenTelemetry SDK exporters, and debug files in S3: ProGuard
mappings deobfuscate Android crashes; dSYMs are stored by debug id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from mobileplane.services.telemetry import models as m

pytestmark = pytest.mark.integration

Auth = Callable[[str], dict[str, str]]


async def rows(database_url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(table))]
    finally:
        await engine.dispose()


async def test_opentelemetry_sdk_exports_traces_and_metrics(
    telemetry_url: str, keys: dict[str, str], database_url: str
) -> None:
    headers = {"x-sentry-auth": f"Sentry sentry_key={keys['shop-ios']}"}
    resource = Resource.create({"service.name": "shop-ios", "app.version": "2.1.0"})
    exporter = OTLPSpanExporter(endpoint=f"{telemetry_url}/telemetry/v1/traces", headers=headers)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tracer_provider.get_tracer("app")
    with (
        tracer.start_as_current_span("app.start", attributes={"cold": True}),
        tracer.start_as_current_span("screen.render", attributes={"screen": "home"}),
    ):
        pass
    tracer_provider.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{telemetry_url}/telemetry/v1/metrics", headers=headers),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("app")
    meter.create_histogram("http.client.duration", unit="ms").record(120, {"host": "api"})
    meter.create_counter("app.launches").add(3)
    meter_provider.shutdown()

    spans = {s["name"]: s for s in await rows(database_url, m.spans)}
    assert set(spans) == {"app.start", "screen.render"}
    assert spans["screen.render"]["parent_span_id"] == spans["app.start"]["span_id"]
    assert spans["app.start"]["attributes"] == {"cold": True}
    assert spans["app.start"]["service_name"] == "shop-ios"
    assert all(s["project_id"] == 3 for s in spans.values())
    points = {p["name"]: p for p in await rows(database_url, m.metric_points)}
    assert points["app.launches"]["value"] == 3 and points["app.launches"]["kind"] == "sum"
    assert points["http.client.duration"]["data"]["count"] == 1
    assert points["http.client.duration"]["data"]["sum"] == 120


async def test_otlp_refusals(
    client: httpx.AsyncClient, keys: dict[str, str], sentry_auth: Auth
) -> None:
    url = "/telemetry/v1/traces"
    no_key = await client.post(url, content=b"{}", headers={"content-type": "application/json"})
    assert no_key.status_code == 401
    headers = sentry_auth(keys["shop-ios"])
    wrong_type = await client.post(
        url, content=b"{}", headers={**headers, "content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    garbage = await client.post(
        url, content=b"\xff\xff", headers={**headers, "content-type": "application/x-protobuf"}
    )
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "invalid_otlp"
    empty = await client.post(
        url, content=b"{}", headers={**headers, "content-type": "application/json"}
    )
    assert empty.status_code == 200 and empty.json() == {}


MAPPING = """\
com.example.shop.Checkout -> a.b:
# {"id":"sourceFile","fileName":"Checkout.kt"}
    1:4:void pay(int):15:18 -> a
    5:5:void charge(int):30:30 -> a
    5:5:void pay(int):19 -> a
com.example.shop.PaymentDeclined -> a.c:
"""


def android_crash(release: str) -> bytes:
    event = {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "platform": "java",
        "release": release,
        "exception": {
            "values": [
                {
                    "type": "c",
                    "module": "a",
                    "value": "declined",
                    "mechanism": {"type": "UncaughtExceptionHandler", "handled": False},
                    "stacktrace": {
                        "frames": [
                            {
                                "module": "android.app.Activity",
                                "function": "performCreate",
                                "lineno": 8,
                                "in_app": False,
                            },
                            {"module": "a.b", "function": "a", "lineno": 5, "in_app": True},
                        ]
                    },
                }
            ]
        },
    }
    payload = json.dumps(event).encode()
    return (
        b"{}\n"
        + json.dumps({"type": "event", "length": len(payload)}).encode()
        + b"\n"
        + payload
        + b"\n"
    )


async def test_proguard_mapping_deobfuscates_android_crashes(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    admin_headers: dict[str, str],
    s3_client: Any,
    s3_bucket: str,
) -> None:
    path = "/telemetry/projects/shop-android/releases/com.example.shop@3.0.0+7/proguard"
    bad = await client.put(path, content=b"hello world", headers=admin_headers)
    assert bad.status_code == 422 and "mapping" in bad.json()["error"]["message"]
    up = await client.put(path, content=MAPPING.encode(), headers=admin_headers)
    assert up.status_code == 201, up.text
    assert up.json()["classes"] == 2
    stored = s3_client.get_object(Bucket=s3_bucket, Key=up.json()["key"])["Body"].read()
    assert stored == MAPPING.encode()

    url = "/telemetry/api/2/envelope/"
    headers = sentry_auth(keys["shop-android"])
    for release in ("com.example.shop@3.0.0+7", "com.example.shop@2.9.0"):
        r = await client.post(url, content=android_crash(release), headers=headers)
        assert r.status_code == 200, r.text
    issues = (await client.get("/telemetry/projects/2/issues", headers=admin_headers)).json()[
        "issues"
    ]
    titles = sorted(i["title"] for i in issues)
    # mapped release: original names; release without a mapping: left obfuscated
    assert titles == ["PaymentDeclined: declined", "c: declined"]
    mapped = next(i for i in issues if i["title"].startswith("PaymentDeclined"))
    assert mapped["culprit"] == "com.example.shop.Checkout in charge"
    events = (
        await client.get(
            f"/telemetry/projects/2/issues/{mapped['id']}/events", headers=admin_headers
        )
    ).json()
    frames = events["events"][0]["payload"]["exception"]["values"][0]["stacktrace"]["frames"]
    assert [(f["function"], f["lineno"]) for f in frames] == [
        ("performCreate", 8),
        ("pay", 19),
        ("charge", 30),
    ]
    wrong_platform = await client.put(
        "/telemetry/projects/shop-ios/releases/x@1/proguard",
        content=MAPPING.encode(),
        headers=admin_headers,
    )
    assert wrong_platform.status_code == 422


async def test_dsym_upload_by_debug_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    debug_id = "C0BCC3F1-9827-FE65-3058-B1A3A6ABF4B5"
    r = await client.put(
        f"/telemetry/projects/shop-ios/dsyms/{debug_id}",
        content=b"\xcf\xfa\xed\xfe dwarf",
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["ident"] == "c0bcc3f19827fe653058b1a3a6abf4b5"
    bad = await client.put(
        "/telemetry/projects/shop-ios/dsyms/not-a-uuid", content=b"x", headers=admin_headers
    )
    assert bad.status_code == 422
    listed = (
        await client.get("/telemetry/projects/shop-ios/artifacts", headers=admin_headers)
    ).json()["artifacts"]
    assert [a["kind"] for a in listed] == ["dsym"]


async def test_uploads_without_a_bucket_answer_503(
    monkeypatch: pytest.MonkeyPatch,
    telemetry_env: dict[str, str],
    database_url: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    from mobileplane.services.kit.identity import Identity, identity_headers
    from mobileplane.services.kit.mount import create_service_app
    from mobileplane.services.kit.settings import KitSettings
    from mobileplane.services.telemetry.service import SERVICE

    monkeypatch.delenv("TELEMETRY_ARTIFACTS_BUCKET")
    settings = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    app = create_service_app(SERVICE, settings=settings)
    admin = identity_headers(Identity("ops", frozenset({"telemetry:admin"})))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.put(
                "/telemetry/projects/shop-android/releases/a@1/proguard",
                content=b"x",
                headers=admin,
            )
    assert r.status_code == 503
    assert "TELEMETRY_ARTIFACTS_BUCKET" in r.json()["error"]["message"]
