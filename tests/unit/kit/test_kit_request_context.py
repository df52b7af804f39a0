"""The request-context middleware: request ids in and out, streaming, access logs, trace ids."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from opentelemetry.sdk.trace import TracerProvider

from mobileplane.services.kit.context import current_request_id
from mobileplane.services.kit.errors import install_error_handlers
from mobileplane.services.kit.logging import (
    ContextFilter,
    JsonFormatter,
    RequestContextMiddleware,
)
from mobileplane.services.kit.telemetry import TracingMiddleware

ClientFactory = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
VALID_128 = "a" * 128


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/id")
    async def seen_id() -> dict[str, str | None]:
        logging.getLogger("test.endpoint").info("inside")
        return {"request_id": current_request_id()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk-{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        pytest.param("abc-123_X.y", True, id="valid"),
        pytest.param(VALID_128, True, id="128-chars"),
        pytest.param("a" * 129, False, id="too-long"),
        pytest.param("has space", False, id="space"),
        pytest.param("a/b", False, id="slash"),
        pytest.param("x;drop", False, id="semicolon"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="absent"),
    ],
)
async def test_request_id_is_kept_or_replaced(
    client_for: ClientFactory, incoming: str | None, kept: bool
) -> None:
    headers = {} if incoming is None else {"x-request-id": incoming}
    async with client_for(make_app()) as client:
        response = await client.get("/id", headers=headers)
    echoed = response.headers["x-request-id"]
    assert response.json() == {"request_id": echoed}
    if kept:
        assert echoed == incoming
    else:
        assert echoed != incoming
        assert len(echoed) == 32 and echoed.isalnum()


async def test_each_request_gets_its_own_id(client_for: ClientFactory) -> None:
    async with client_for(make_app()) as client:
        ids = {(await client.get("/id")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_streaming_response_streams_with_id(client_for: ClientFactory) -> None:
    async with (
        client_for(make_app()) as client,
        client.stream("GET", "/stream", headers={"x-request-id": "s1"}) as response,
    ):
        assert response.headers["x-request-id"] == "s1"
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body == b"chunk-0;chunk-1;chunk-2;"


async def test_access_log_line(client_for: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mobileplane.access")
    async with client_for(make_app()) as client:
        await client.get("/id?token=should-not-be-logged", headers={"x-request-id": "log-1"})
    [record] = [r for r in caplog.records if r.name == "mobileplane.access"]
    assert record.getMessage() == "GET /id 200"
    assert record.__dict__["http_status"] == 200
    assert record.__dict__["duration_ms"] >= 0
    assert "should-not-be-logged" not in record.getMessage()


async def test_access_lines_name_their_app(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Two apps in one process (the quick start's gateway and platform) are told apart by it.
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware, service="gateway")
    caplog.set_level(logging.INFO, logger="mobileplane.access")
    async with client_for(app) as client:
        await client.get("/nowhere")
    [record] = [r for r in caplog.records if r.name == "mobileplane.access"]
    assert record.__dict__["service"] == "gateway"


async def test_probe_paths_log_at_debug(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    caplog.set_level(logging.DEBUG, logger="mobileplane.access")
    async with client_for(app) as client:
        await client.get("/healthz")
    [record] = [r for r in caplog.records if r.name == "mobileplane.access"]
    assert record.levelno == logging.DEBUG


def test_json_formatter_includes_context_and_extras() -> None:
    record = logging.LogRecord("svc", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.request_id = "r-1"
    record.user_count = 3
    entry = json.loads(JsonFormatter(service="profiles").format(record))
    assert entry["message"] == "hello you"
    assert entry["level"] == "WARNING"
    assert entry["service"] == "profiles"
    assert entry["request_id"] == "r-1"
    assert entry["user_count"] == 3
    assert entry["timestamp"].endswith("+00:00")


async def test_traceparent_is_continued_and_logged(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.add_middleware(TracingMiddleware, tracer_provider=TracerProvider())
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caplog.set_level(logging.INFO, logger="test.endpoint")
    caplog.handler.addFilter(ContextFilter())
    async with client_for(app) as client:
        await client.get("/id", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    [record] = [r for r in caplog.records if r.name == "test.endpoint"]
    assert record.__dict__["trace_id"] == trace_id
    assert len(record.__dict__["span_id"]) == 16
    assert record.__dict__["span_id"] != "00f067aa0ba902b7"  # our server span, child of theirs
