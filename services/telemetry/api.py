"""The telemetry service's ingestion surface: what apps send, authenticated by DSN keys.

- ``POST /telemetry/api/{project}/envelope/`` — the Sentry envelope endpoint every Sentry SDK
  posts to when its DSN is ``https://<public key>@<host>/telemetry/<project>``;
- ``POST /telemetry/v1/traces`` and ``/telemetry/v1/metrics`` — OTLP/HTTP (protobuf or JSON),
  with the DSN key in ``X-Sentry-Auth`` (set it in ``OTEL_EXPORTER_OTLP_HEADERS``) or
  ``?sentry_key=``.

Answers: 200 when stored (the transaction commits first); 400 with a reason for a malformed
body; 401/403 for a missing, unknown, disabled or foreign key; 413 beyond the size limits;
429 with ``X-Sentry-Rate-Limits`` and ``Retry-After`` when rate limits refuse everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.app import get_keyspace
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import (
    BadRequest,
    Forbidden,
    RateLimited,
    ServiceError,
    Unauthorized,
)
from mobileplane.services.kit.expiring import ExpiringCache
from mobileplane.services.kit.redis import KeySpace, Redis, get_redis
from mobileplane.services.telemetry import limiter, store
from mobileplane.services.telemetry import models as m
from mobileplane.services.telemetry.artifacts import Artifacts
from mobileplane.services.telemetry.auth import AuthError, public_key
from mobileplane.services.telemetry.envelope import (
    EnvelopeError,
    EnvelopeTooLarge,
    UnsupportedEncoding,
    decompress,
    parse,
)
from mobileplane.services.telemetry.events import ItemError
from mobileplane.services.telemetry.ingest import IngestContext, MappingLookup, ingest
from mobileplane.services.telemetry.otlp import OtlpError, decode_metrics, decode_traces, success
from mobileplane.services.telemetry.otlp import media_type as otlp_media_type
from mobileplane.services.telemetry.ratelimit import ITEM_CATEGORY, Decision, Limits, keep_trace
from mobileplane.services.telemetry.ratelimit import requested as requested_categories
from mobileplane.services.telemetry.sessions import SessionError
from mobileplane.services.telemetry.settings import TelemetrySettings


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


@dataclass
class TelemetryState:
    settings: TelemetrySettings
    artifacts: Artifacts | None
    # public key -> (expiry on the monotonic clock, the key or None if unknown). Saves one
    # query per envelope; TELEMETRY_KEY_CACHE_SECONDS bounds how stale it can be.
    keys: ExpiringCache[store.KeyInfo | None] = field(default_factory=ExpiringCache)

    async def lookup_key(self, session: AsyncSession, key: str) -> store.KeyInfo | None:
        return await self.keys.get_or_load(
            key, self.settings.telemetry_key_cache_seconds, lambda: store.lookup_key(session, key)
        )


def get_state(request: Request) -> TelemetryState:
    state = getattr(request.app.state, "telemetry", None)
    if not isinstance(state, TelemetryState):
        raise RuntimeError("the telemetry service was not started (no app.state.telemetry)")
    return state


State = Annotated[TelemetryState, Depends(get_state)]
RedisDep = Annotated[Redis, Depends(get_redis)]
Keys = Annotated[KeySpace, Depends(get_keyspace)]


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) to read more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def authenticate(
    request: Request, session: AsyncSession, state: TelemetryState, project_ref: str | None
) -> store.KeyInfo:
    """The DSN key of the request and its project; 401/403 with what is wrong."""
    sentry = {"www-authenticate": "Sentry"}
    try:
        key = public_key(request.headers, request.query_params)
    except AuthError as e:
        raise Unauthorized(str(e), code="invalid_dsn_key", headers=sentry) from None
    info = await state.lookup_key(session, key)
    if info is None:
        raise Unauthorized("unknown DSN key", code="invalid_dsn_key", headers=sentry)
    if not info.enabled:
        raise Forbidden("this DSN key is disabled", code="dsn_key_disabled")
    if project_ref is not None and str(info.project["id"]) != project_ref:
        raise Forbidden(
            f"this DSN key belongs to project {info.project['id']}, not {project_ref}",
            code="dsn_key_project_mismatch",
        )
    return info


def limits_for(info: store.KeyInfo, settings: TelemetrySettings) -> Limits:
    category = info.project.get("category_limits") or {}
    return Limits(
        key_per_minute=info.rate_limit_per_minute or settings.telemetry_key_rate_limit_per_minute,
        category_per_minute={str(k): int(v) for k, v in category.items()},
    )


def _decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    try:
        return decompress(body, encoding, limit=limit)
    except EnvelopeTooLarge as e:
        raise PayloadTooLarge(str(e)) from None
    except UnsupportedEncoding as e:
        raise UnsupportedMediaType(str(e)) from None
    except EnvelopeError as e:
        raise BadRequest(str(e), code="invalid_body") from None


def _refused(decision: Decision, message: str) -> RateLimited:
    headers = {"x-sentry-rate-limits": decision.header or ""}
    return RateLimited(message, retry_after=decision.retry_after, headers=headers)


def router() -> APIRouter:
    api = APIRouter(tags=["telemetry ingestion"])

    @api.post("/api/{project_ref}/envelope/", summary="Sentry envelope endpoint")
    @api.post("/api/{project_ref}/envelope", include_in_schema=False)
    async def envelope_endpoint(
        project_ref: str,
        request: Request,
        session: DbSession,
        state: State,
        redis: RedisDep,
        keyspace: Keys,
    ) -> Response:
        settings = state.settings
        info = await authenticate(request, session, state, project_ref)
        body = await read_body(request, settings.telemetry_max_body_bytes)
        data = _decoded(
            body, request.headers.get("content-encoding"), settings.telemetry_max_envelope_bytes
        )
        try:
            envelope = parse(data, max_item_bytes=settings.telemetry_max_item_bytes)
        except EnvelopeTooLarge as e:
            raise PayloadTooLarge(str(e)) from None
        except EnvelopeError as e:
            raise BadRequest(f"malformed envelope: {e}", code="invalid_envelope") from None
        types = [item.type for item in envelope.items]
        decision = await limiter.check(
            redis,
            keyspace,
            project_id=int(info.project["id"]),
            public_key=info.public_key,
            limits=limits_for(info, settings),
            requested=requested_categories(types),
            now=time.time(),
        )
        counted = [t for t in types if t in ITEM_CATEGORY]
        if counted and all(not decision.allows(ITEM_CATEGORY[t]) for t in counted):
            raise _refused(decision, "rate limit exceeded for every item of this envelope")
        mappings: MappingLookup | None = None
        if state.artifacts is not None:
            artifacts = state.artifacts

            async def mappings_lookup(project_id: int, release: str) -> Any:
                return await artifacts.proguard(session, project_id, release)

            mappings = mappings_lookup
        ctx = IngestContext(
            project=info.project,
            now=datetime.now(UTC),
            max_event_bytes=settings.telemetry_max_event_bytes,
            traces_sample_rate=settings.telemetry_traces_sample_rate,
            allows=decision.allows,
            mappings=mappings,
        )
        try:
            result = await ingest(session, envelope, ctx)
        except EnvelopeTooLarge as e:
            raise PayloadTooLarge(str(e)) from None
        except (EnvelopeError, ItemError, SessionError) as e:
            raise BadRequest(f"invalid item: {e}", code="invalid_item") from None
        headers = {"x-sentry-rate-limits": decision.header} if decision.header else {}
        event_id = envelope.headers.get("event_id")
        return JSONResponse(
            {"id": event_id if isinstance(event_id, str) else None, **result.summary()},
            headers=headers,
        )

    async def otlp(
        request: Request,
        session: AsyncSession,
        state: TelemetryState,
        redis: Redis,
        keyspace: KeySpace,
        metrics: bool,
    ) -> Response:
        settings = state.settings
        info = await authenticate(request, session, state, None)
        try:
            kind = otlp_media_type(request.headers.get("content-type"))
        except OtlpError as e:
            raise UnsupportedMediaType(str(e)) from None
        body = await read_body(request, settings.telemetry_max_otlp_bytes)
        data = _decoded(
            body, request.headers.get("content-encoding"), settings.telemetry_max_otlp_bytes
        )
        try:
            rows = decode_metrics(data, kind) if metrics else decode_traces(data, kind)
        except OtlpError as e:
            raise BadRequest(str(e), code="invalid_otlp") from None
        project_id = int(info.project["id"])
        if not metrics:
            rate = settings.telemetry_traces_sample_rate
            rows = [r for r in rows if keep_trace(r["trace_id"], rate)]
            decision = await limiter.check(
                redis,
                keyspace,
                project_id=project_id,
                public_key=info.public_key,
                limits=limits_for(info, settings),
                requested={"span": len(rows)},
                now=time.time(),
            )
            if not decision.allows("span"):
                raise _refused(decision, "span rate limit exceeded")
        table = m.metric_points if metrics else m.spans
        await store.store_rows(session, table, [{**r, "project_id": project_id} for r in rows])
        content, content_type = success(kind, metrics)
        return Response(content=content, media_type=content_type)

    @api.post("/v1/traces", summary="OTLP/HTTP traces")
    async def otlp_traces(
        request: Request, session: DbSession, state: State, redis: RedisDep, keyspace: Keys
    ) -> Response:
        return await otlp(request, session, state, redis, keyspace, metrics=False)

    @api.post("/v1/metrics", summary="OTLP/HTTP metrics")
    async def otlp_metrics(
        request: Request, session: DbSession, state: State, redis: RedisDep, keyspace: Keys
    ) -> Response:
        return await otlp(request, session, state, redis, keyspace, metrics=True)

    return api


def dsn(public_url: str, public_key_: str, project_id: int) -> str:
    """``https://<key>@host/telemetry/<id>`` from the public base URL ``https://host``."""
    scheme, _, rest = public_url.rstrip("/").partition("://")
    return f"{scheme}://{public_key_}@{rest}/telemetry/{project_id}"
