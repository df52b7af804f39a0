"""OpenTelemetry tracing for the services: one tracer provider, W3C ``traceparent`` in and out.

:func:`create_tracer_provider` builds a provider whose resource names the service; it exports
spans over OTLP/HTTP only when an endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``), so
a service without a collector still gets trace ids in its logs and propagates them, at no cost.

:class:`TracingMiddleware` (pure ASGI, like the request-context middleware) continues the
caller's trace from the ``traceparent``/``tracestate`` headers and wraps each request in a
SERVER span; :func:`inject_trace_headers` adds the current context to outgoing requests.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "mobileplane.services.kit"


def create_tracer_provider(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
) -> TracerProvider:
    """A provider for one service; spans are exported only if ``otlp_endpoint`` is set."""
    attributes: dict[str, str] = {"service.name": service_name}
    if service_version:
        attributes["service.version"] = service_version
    if environment:
        attributes["deployment.environment.name"] = environment
    provider = TracerProvider(resource=Resource.create(attributes))
    if otlp_endpoint:
        endpoint = otlp_endpoint.rstrip("/")
        # OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to /v1/traces.
        if not endpoint.endswith("/v1/traces"):
            endpoint = f"{endpoint}/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def extract_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context from W3C ``traceparent``/``tracestate`` headers."""
    return _PROPAGATOR.extract(carrier={k.lower(): v for k, v in headers.items()})


def inject_trace_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current span's ``traceparent`` (and ``tracestate``) to outgoing ``headers``."""
    _PROPAGATOR.inject(carrier=headers)
    return headers


class TracingMiddleware:
    """Wraps each HTTP request in a SERVER span that continues the caller's trace."""

    def __init__(self, app: ASGIApp, *, tracer_provider: trace.TracerProvider | None = None):
        self.app = app
        self.tracer_provider = tracer_provider

    def _tracer(self, scope: Scope) -> trace.Tracer:
        # The provider is created at startup, after the middleware: look it up per request.
        provider = self.tracer_provider
        if provider is None:
            app = scope.get("app")
            found = getattr(getattr(app, "state", None), "tracer_provider", None)
            provider = found if isinstance(found, trace.TracerProvider) else None
        return trace.get_tracer(_TRACER_NAME, tracer_provider=provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        parent = extract_context(
            {k: v for k in ("traceparent", "tracestate") if (v := headers.get(k)) is not None}
        )
        method = scope.get("method", "")
        with self._tracer(scope).start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
        ) as span:

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                # The route template is known only after routing ran: "GET /items/{item_id}".
                route = scope.get("route")
                template = getattr(route, "path", None)
                if isinstance(template, str):
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
