"""Structured logs and the request-context middleware.

Every service logs one JSON object per line (stdlib :mod:`logging`, no extra library) with the
request id and the OpenTelemetry trace and span ids of the record's context, so a log line, a
trace and a client's error report (which quotes ``request_id``) can be joined.

:class:`RequestContextMiddleware` is pure ASGI rather than ``BaseHTTPMiddleware``: it wraps
``send`` instead of buffering the response, so streaming responses stream and background
tasks keep their context. It decides the request id (the caller's ``x-request-id`` when it is
safe to echo, a new one otherwise), echoes it on the response, renders unexpected exceptions as
the kit's 500 body, and writes one access log line per request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Collection
from typing import Any, Literal

from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobileplane.services.kit.context import (
    REQUEST_ID_HEADER,
    choose_request_id,
    request_id_var,
    store_request_id,
)
from mobileplane.services.kit.errors import unexpected_error_body

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)

_access_logger = logging.getLogger("mobileplane.access")
_error_logger = logging.getLogger("mobileplane.errors")


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``trace_id`` and ``span_id`` of the current context to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        else:
            record.trace_id = None
            record.span_id = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra=`` fields are kept as top-level keys."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service is not None:
            entry["service"] = self.service
        for key in ("request_id", "trace_id", "span_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: Libraries whose INFO lines repeat what the kit already logs. httpx writes one line per
#: request the gateway sends upstream, *with the query string* (OAuth codes, presigned
#: signatures) that the access log deliberately leaves out (issue 21 §4).
QUIET_LIBRARIES = {"httpx": logging.WARNING, "httpcore": logging.WARNING}


def quiet_libraries() -> None:
    """Raise the level of :data:`QUIET_LIBRARIES`' loggers."""
    for name, level in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(level)


def configure_logging(
    level: str = "INFO", *, service: str | None = None, fmt: LogFormat = "json"
) -> None:
    """Send all logs to stderr in ``fmt``; calling it again replaces the previous setup."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter(service) if fmt == "json" else logging.Formatter(_TEXT_FORMAT)
    )
    handler.set_name("mobileplane")
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == "mobileplane"]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_libraries()


class RequestContextMiddleware:
    """Request id in and out, 500s in the kit's shape, and one access log line per request.

    ``service`` names the app on each access record (``record.service``): where several apps
    share a process (the quick start's gateway and platform app) it tells their lines apart.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str | None = None,
        quiet_paths: Collection[str] = ("/healthz", "/readyz"),
    ):
        self.app = app
        self.service = service
        # Probes hit these every few seconds; their access lines go to DEBUG, not INFO.
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = choose_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        store_request_id(scope, request_id)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_code = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started:
                raise  # Nothing can be rendered any more; the server closes the connection.
            _error_logger.error("unhandled error", exc_info=exc)
            status_code = 500
            response = JSONResponse(unexpected_error_body(request_id), status_code=500)
            response.headers[REQUEST_ID_HEADER] = request_id
            await response(scope, receive, send)
        finally:
            self._log_access(scope, status_code, time.perf_counter() - started)
            request_id_var.reset(token)

    def _log_access(self, scope: Scope, status_code: int, seconds: float) -> None:
        path = scope.get("path", "")
        level = logging.DEBUG if path in self.quiet_paths else logging.INFO
        # The path only: query strings can carry tokens (OAuth codes, presigned signatures).
        _access_logger.log(
            level,
            "%s %s %d",
            scope.get("method", ""),
            path,
            status_code,
            extra={
                "http_method": scope.get("method", ""),
                "http_path": path,
                "http_status": status_code,
                "duration_ms": round(seconds * 1000, 2),
                **({"service": self.service} if self.service is not None else {}),
            },
        )
