"""The sync service's HTTP surface: upload, download, live change notifications, the schema.

Every route needs the ``sync`` scope; the caller's user (the token's ``sub``) decides the
buckets: its own (``user:<sub>``) and the global one. Bad input is refused before anything is
written (a batch is applied whole or not at all); errors use the kit's JSON format.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import text

from mobileplane.services.kit.app import get_keyspace
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    ServiceError,
    ValidationFailed,
)
from mobileplane.services.kit.identity import Identity, require_scope
from mobileplane.services.kit.redis import KeySpace, get_redis, unavailable_on_error
from mobileplane.services.sync import store
from mobileplane.services.sync.apply import QuotaExceeded
from mobileplane.services.sync.hlc import ClockError, Timestamp
from mobileplane.services.sync.merge import MergeError, Op, merge
from mobileplane.services.sync.protocol import (
    Change,
    Checkpoint,
    DownloadResponse,
    UploadRequest,
    UploadResponse,
)
from mobileplane.services.sync.schema import SchemaError, SyncSchema, WriteError, check_write
from mobileplane.services.sync.settings import SyncSettings
from mobileplane.services.sync.tokens import TokenError, TokenKeys, positions, seal, unseal

SyncIdentity = Annotated[Identity, require_scope("sync")]


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UpgradeRequired(ServiceError):
    """The app is older than the oldest schema version the server still serves."""

    status_code = 426
    code = "upgrade_required"


@dataclass
class SyncState:
    settings: SyncSettings
    schema: SyncSchema
    #: MAC keys of checkpoint tokens and cursors (``SYNC_CHECKPOINT_KEYS``).
    keys: TokenKeys


def get_state(request: Request) -> SyncState:
    state = getattr(request.app.state, "sync", None)
    if not isinstance(state, SyncState):
        raise RuntimeError("the sync service was not started (no app.state.sync)")
    return state


State = Annotated[SyncState, Depends(get_state)]


def _check_version(schema: SyncSchema, version: int) -> None:
    if version < schema.min_client_version:
        raise UpgradeRequired(
            f"schema version {version} is no longer served (oldest: "
            f"{schema.min_client_version}); update the app",
            details={"min_version": schema.min_client_version, "version": schema.version},
        )
    if version > schema.version:
        raise Conflict(
            f"schema version {version} is newer than the server's ({schema.version}); "
            "the server has not been upgraded yet: retry later",
            code="schema_too_new",
            details={"version": schema.version},
        )


def _validate(state: SyncState, body: UploadRequest, now_ms: int) -> list[Timestamp]:
    """Check the whole batch before applying any of it; the clock of each mutation."""
    settings, schema = state.settings, state.schema
    if len(body.mutations) > settings.sync_max_batch:
        raise PayloadTooLarge(
            f"{len(body.mutations)} mutations in one upload; at most "
            f"{settings.sync_max_batch}: upload the queue in smaller batches"
        )
    _check_version(schema, body.schema_version)
    stamps: list[Timestamp] = []
    previous = 0
    drift = settings.sync_max_clock_drift_seconds * 1000
    for index, mutation in enumerate(body.mutations):
        where = f"mutations[{index}] (id {mutation.id})"
        if mutation.id <= previous:
            raise ValidationFailed(
                f"{where}: mutation ids must increase within a batch", details={"index": index}
            )
        previous = mutation.id
        try:
            table = schema.table(mutation.table)
            if mutation.op is Op.DELETE and mutation.values:
                raise WriteError("a delete carries no values")
            check_write(table, mutation.values, body.schema_version)
            stamp = Timestamp.decode(mutation.hlc)
            # Resolver operands are checked by a dry merge into an empty row.
            if mutation.op is not Op.DELETE:
                merge(None, Op.INSERT, mutation.values, stamp, table.resolvers())
        except (WriteError, ClockError, MergeError) as e:
            raise ValidationFailed(f"{where}: {e}", details={"index": index}) from None
        if stamp.millis - now_ms > drift:
            # A device clock far ahead must not win every conflict until that date: the
            # write is applied as of the server's time instead of being refused (a refused
            # write would block the device's queue for ever).
            stamp = Timestamp(now_ms, 0, stamp.node)
        stamps.append(stamp)
    return stamps


def bucket_channel(keyspace: KeySpace, bucket: str) -> str:
    return keyspace.key("sync", "bucket", bucket)


def router() -> APIRouter:
    api = APIRouter(tags=["sync"])

    @api.get("/schema", summary="The synced data model, as declared")
    async def get_schema(state: State, _: SyncIdentity) -> dict[str, Any]:
        schema = state.schema
        return {
            "version": schema.version,
            "minClientVersion": schema.min_client_version,
            "tables": {
                t.name: {
                    "bucket": t.bucket,
                    "columns": {
                        c.name: {"type": c.type, "resolver": c.resolver, "since": c.since}
                        for c in t.columns.values()
                    },
                }
                for t in schema.tables.values()
            },
        }

    @api.post(
        "/upload",
        response_model=UploadResponse,
        summary="Apply a client's queued mutations, in order, all or none",
    )
    async def upload(
        body: UploadRequest,
        request: Request,
        state: State,
        identity: SyncIdentity,
        session: DbSession,
    ) -> UploadResponse:
        stamps = _validate(state, body, int(datetime.now(UTC).timestamp() * 1000))
        try:
            outcome = await store.apply_upload(
                session,
                state.schema,
                subject=identity.subject,
                client_id=body.client_id,
                schema_version=body.schema_version,
                mutations=body.mutations,
                stamps=stamps,
                max_rows=state.settings.sync_max_rows_per_user,
            )
        except store.ClientMismatch:
            raise Forbidden(
                "this client id belongs to another user: generate a new one per app install "
                "and user",
                code="client_mismatch",
            ) from None
        except QuotaExceeded:
            raise Forbidden(
                f"your data holds {state.settings.sync_max_rows_per_user} rows, the most "
                "allowed: delete some before adding more",
                code="quota_exceeded",
            ) from None
        await session.commit()  # durable before we answer, and before anyone is told
        if outcome.results and any(r.op_id for r in outcome.results):
            redis = get_redis(request)
            channel = bucket_channel(get_keyspace(request), outcome.bucket)
            try:
                async with unavailable_on_error():
                    await redis.publish(channel, json.dumps({outcome.bucket: outcome.last_op}))
            except ServiceError:
                pass  # live updates are a hint; clients also poll
        return UploadResponse(last_mutation_id=outcome.last_mutation_id, results=outcome.results)

    @api.get(
        "/download",
        response_model=DownloadResponse,
        summary="Changes since a checkpoint, paged; the last page carries the new checkpoint",
    )
    async def download(
        state: State,
        identity: SyncIdentity,
        session: DbSession,
        client_id: Annotated[str, Query(pattern=r"^[A-Za-z0-9._:-]{8,128}$")],
        schema_version: Annotated[int, Query(ge=1)],
        checkpoint: Annotated[str | None, Query(max_length=4096)] = None,
        cursor: Annotated[str | None, Query(max_length=4096)] = None,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> DownloadResponse:
        _check_version(state.schema, schema_version)
        page = limit or state.settings.sync_page_size
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        names = store.buckets_of(identity.subject)
        try:
            if cursor:
                progress = unseal(state.keys, "cursor", cursor)
                since = {str(k): int(v) for k, v in progress["since"].items()}
                target = {str(k): int(v) for k, v in progress["target"].items()}
                last_mutation = int(progress["lmid"])
                reset: list[str] = list(progress.get("reset", []))
                if set(target) != set(names):
                    raise TokenError("the cursor belongs to another user")
            else:
                since = positions(state.keys, checkpoint)
                states = await store.bucket_states(session, names)
                target = {b: states[b].last_op for b in names}
                reset = []
                for b in names:
                    had = since.get(b, 0)
                    if had and (had < states[b].purged_through or had > states[b].last_op):
                        reset.append(b)  # too old (purged), or from before a restore
                        since[b] = 0
                last_mutation = await store.last_mutation_id(session, client_id, identity.subject)
        except (TokenError, KeyError, TypeError, ValueError) as e:
            raise BadRequest(
                f"invalid checkpoint or cursor ({e}): resync from the start (no checkpoint)",
                code="invalid_checkpoint",
            ) from None
        changes: list[Change] = []
        for b in names:
            remaining = page - len(changes)
            if remaining <= 0:
                break
            if since.get(b, 0) >= target[b]:
                continue
            got = await store.read_changes(
                session,
                state.schema,
                bucket=b,
                after=since.get(b, 0),
                target=target[b],
                limit=remaining,
                client_version=schema_version,
                initial=since.get(b, 0) == 0,
            )
            changes.extend(got)
            if len(got) < remaining:
                since[b] = target[b]
            elif got:
                since[b] = got[-1].op_id
        done = all(since.get(b, 0) >= target[b] for b in names)
        if not done:
            cursor_out = seal(
                state.keys,
                "cursor",
                {"since": since, "target": target, "lmid": last_mutation, "reset": reset},
            )
            return DownloadResponse(
                changes=changes, has_more=True, cursor=cursor_out, reset_buckets=reset
            )
        # The checksum after the target op: the bucket's own when nothing came after it (its
        # op may be a removal compacted away since), else the op's (recent: never compacted).
        now_states = await store.bucket_states(session, names)
        buckets = {
            b: store.bucket_checkpoint(
                target[b],
                now_states[b].checksum
                if now_states[b].last_op == target[b]
                else await store.checksum_at(session, b, target[b]),
            )
            for b in names
        }
        return DownloadResponse(
            changes=changes,
            has_more=False,
            checkpoint=Checkpoint(
                token=seal(state.keys, "checkpoint", target),
                buckets=buckets,
                last_mutation_id=last_mutation,
            ),
            reset_buckets=reset,
        )

    @api.get("/events", summary="Server-sent events: your buckets changed, download again")
    async def events(request: Request, identity: SyncIdentity) -> StreamingResponse:
        redis = get_redis(request)
        keyspace = get_keyspace(request)
        channels = [bucket_channel(keyspace, b) for b in store.buckets_of(identity.subject)]

        async def stream() -> AsyncIterator[bytes]:
            pubsub = redis.pubsub()
            try:
                async with unavailable_on_error():
                    await pubsub.subscribe(*channels)
                yield b"event: ready\ndata: {}\n\n"
                idle = 0.0
                while not await request.is_disconnected():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        idle += 1.0
                        if idle >= 15:
                            idle = 0.0
                            yield b": keep-alive\n\n"  # proxies drop silent streams
                        continue
                    idle = 0.0
                    data = message["data"]
                    payload = data.decode() if isinstance(data, bytes) else str(data)
                    yield f"event: changed\ndata: {payload}\n\n".encode()
            except asyncio.CancelledError:
                raise
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return api


def load_schema(settings: SyncSettings) -> SyncSchema:
    try:
        return settings.declared_schema()
    except SchemaError as e:
        raise SchemaError(f"invalid sync schema: {e}") from None
