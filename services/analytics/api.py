"""The analytics service's ingestion surface: Segment's HTTP Tracking API.

``POST /analytics/v1/batch`` (also ``/analytics/v1/b``, where analytics-swift and
analytics-kotlin post) and the single calls ``/analytics/v1/track``, ``/identify``,
``/page``, ``/screen``, ``/group``, ``/alias`` — point a Segment SDK's host at
``https://<public host>/analytics``. The write key authenticates (HTTP Basic user name, or
``writeKey`` in the body, see :mod:`.body`).

Answers: 200 ``{"success": true, ...}`` once the messages are committed; 400 with the reason
for a body that is not JSON, a message that breaks the Spec (single calls) or a batch in which
no message is valid; 401 for a missing, unknown or revoked write key; 413 beyond the size
limits; 415 for a Content-Encoding other than gzip, deflate, br or zstd. A batch with some
invalid messages stores the valid ones and answers 200 listing each rejected message
(``rejected``: index, messageId, reason), as Segment accepts the valid part of a batch: a 4xx
would make the SDK drop the whole batch (it retries only 5xx, 429 and network errors), losing
the valid messages with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.analytics import store
from mobileplane.services.analytics.body import (
    BodyError,
    WriteKeyError,
    decode_body,
    parse_json,
    write_key,
)
from mobileplane.services.analytics.ingest import store_messages
from mobileplane.services.analytics.settings import AnalyticsSettings
from mobileplane.services.analytics.spec import (
    TYPES,
    Message,
    MessageError,
    MessageTooLarge,
    Rejected,
    validate_batch,
    validate_message,
)
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import BadRequest, ServiceError, Unauthorized
from mobileplane.services.kit.expiring import ExpiringCache

log = logging.getLogger("mobileplane.analytics")

BASIC = {"www-authenticate": 'Basic realm="analytics"'}


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


@dataclass
class AnalyticsState:
    settings: AnalyticsSettings
    # write key -> (expiry on the monotonic clock, the key or None if unknown)
    keys: ExpiringCache[store.KeyInfo | None] = field(default_factory=ExpiringCache)

    async def lookup_key(self, session: AsyncSession, key: str) -> store.KeyInfo | None:
        return await self.keys.get_or_load(
            key, self.settings.analytics_key_cache_seconds, lambda: store.lookup_key(session, key)
        )


def get_state(request: Request) -> AnalyticsState:
    state = getattr(request.app.state, "analytics", None)
    if not isinstance(state, AnalyticsState):
        raise RuntimeError("the analytics service was not started (no app.state.analytics)")
    return state


State = Annotated[AnalyticsState, Depends(get_state)]


def _body_error(e: BodyError) -> ServiceError:
    if e.status == 413:
        return PayloadTooLarge(str(e))
    if e.status == 415:
        return UnsupportedMediaType(str(e))
    return BadRequest(str(e), code=e.code)


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


def request_ip(request: Request) -> str | None:
    """The client's address: the gateway's ``X-Forwarded-For`` (it replaces any a client
    sends, see services/gateway/forwarding.py), else the peer's."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[-1].strip() or None
    return request.client.host if request.client else None


async def authenticate(
    session: AsyncSession, state: AnalyticsState, authorization: str | None, body_key: object
) -> store.KeyInfo:
    try:
        key = write_key(authorization, body_key)
    except WriteKeyError as e:
        raise Unauthorized(str(e), code="invalid_write_key", headers=BASIC) from None
    info = await state.lookup_key(session, key)
    if info is None:
        raise Unauthorized("unknown write key", code="invalid_write_key", headers=BASIC)
    if not info.enabled:
        raise Unauthorized("this write key is revoked", code="write_key_revoked", headers=BASIC)
    return info


async def read_request(
    request: Request, session: AsyncSession, state: AnalyticsState
) -> tuple[store.KeyInfo, dict[str, Any]]:
    """The request's source and JSON body; 401/400/413/415 with the reason."""
    settings = state.settings
    authorization = request.headers.get("authorization")
    if authorization:
        # Refuse a bad key before reading (and inflating) up to 500KB.
        await authenticate(session, state, authorization, None)
    limit = settings.analytics_max_batch_bytes
    raw = await read_body(request, limit)
    try:
        body = parse_json(decode_body(raw, request.headers.get("content-encoding"), limit))
    except BodyError as e:
        raise _body_error(e) from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_body")
    info = await authenticate(session, state, authorization, body.get("writeKey"))
    return info, body


def _answer(accepted: int, stored: int, rejected: list[Rejected]) -> dict[str, Any]:
    return {
        "success": True,
        "accepted": accepted,
        "duplicates": accepted - stored,
        "rejected": [r.as_json() for r in rejected],
    }


async def _store(
    request: Request,
    session: AsyncSession,
    state: AnalyticsState,
    info: store.KeyInfo,
    messages: list[Message],
) -> tuple[int, int]:
    result = await store_messages(
        session,
        messages,
        source_id=info.source_id,
        received_at=datetime.now(UTC),
        request_ip=request_ip(request),
        anonymize_ip=state.settings.analytics_ip_anonymization,
    )
    return result.accepted, result.stored


#: The request bodies the OpenAPI document shows (and the fuzzer generates from).
_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(TYPES)},
        "messageId": {"type": "string"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "event": {"type": "string"},
        "name": {"type": "string"},
        "groupId": {"type": "string"},
        "previousId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
    },
}
_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": _MESSAGE_SCHEMA},
        "writeKey": {"type": "string"},
        "sentAt": {"type": "string", "format": "date-time"},
        "context": {"type": "object"},
    },
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def router() -> APIRouter:
    api = APIRouter(tags=["analytics"])

    # analytics-swift and analytics-kotlin post batches to "<apiHost>/b" with an apiHost of
    # "<host>/v1": the same endpoint under Segment's short name.
    @api.post("/v1/b", summary="Segment batch (the mobile SDKs' path)", include_in_schema=False)
    @api.post(
        "/v1/batch",
        summary="Segment batch: many messages in one request",
        openapi_extra=_body_doc(_BATCH_SCHEMA),
    )
    async def batch(request: Request, session: DbSession, state: State) -> dict[str, Any]:
        info, body = await read_request(request, session, state)
        settings = state.settings
        try:
            parsed = validate_batch(
                body,
                max_bytes=settings.analytics_max_message_bytes,
                max_messages=settings.analytics_max_batch_messages,
            )
        except MessageError as e:
            raise BadRequest(str(e), code="invalid_batch") from None
        rejected = parsed.rejected
        if rejected and not parsed.messages:
            raise BadRequest(
                "no message in the batch is valid",
                code="invalid_batch",
                details={"rejected": [r.as_json() for r in rejected]},
            )
        if rejected:
            log.warning(
                "analytics batch: messages rejected",
                extra={
                    "source": info.source,
                    "rejected": len(rejected),
                    "reasons": sorted({r.reason for r in rejected})[:5],
                },
            )
        accepted, stored = await _store(request, session, state, info, parsed.messages)
        return _answer(accepted, stored, rejected)

    def single(kind: str) -> None:
        @api.post(
            f"/v1/{kind}",
            summary=f"Segment {kind} call (one message)",
            name=f"single_{kind}",
            openapi_extra=_body_doc(_MESSAGE_SCHEMA),
        )
        async def call(request: Request, session: DbSession, state: State) -> dict[str, Any]:
            info, body = await read_request(request, session, state)
            limit = state.settings.analytics_max_message_bytes
            try:
                message = validate_message(body, max_bytes=limit, implied_type=kind)
            except MessageTooLarge as e:
                raise PayloadTooLarge(str(e)) from None
            except MessageError as e:
                raise BadRequest(str(e), code="invalid_message") from None
            accepted, stored = await _store(request, session, state, info, [message])
            return _answer(accepted, stored, [])

    for kind in TYPES:
        single(kind)

    return api
