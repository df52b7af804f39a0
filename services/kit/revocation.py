"""Sessions revoked inside a transaction, announced to the gateway before it commits.

An access token is a stateless JWT: deleting or revoking its session in the database does
not stop the gateway from accepting it until it expires. The gateway refuses tokens whose
session has a key in Redis (:data:`~mobileplane.services.kit.identity.REVOKED_SESSIONS`).
Code that ends sessions as part of a larger transaction — a GDPR erasure, which deletes the
user and so the sessions — records them with :func:`revoke_on_commit` on the database
session; whoever owns the transaction calls :func:`announce_pending` before committing. If
Redis cannot be told, that raises (a 503), the transaction rolls back, and nothing is said
to be done that is not.

The keys live for :data:`ANNOUNCE_TTL_SECONDS`: longer than any access token a platform can
be configured to issue, so the announcing service need not know the platform's setting.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.identity import revoked_session_key
from mobileplane.services.kit.redis import KeySpace, unavailable_on_error

#: The longest access-token lifetime auth accepts (its settings and the CRD), in seconds.
MAX_ACCESS_TOKEN_TTL_SECONDS = 86_400

#: How long an announced revocation is kept: every token it could concern has expired by
#: then, with two minutes for the gateway's clock leeway.
ANNOUNCE_TTL_SECONDS = MAX_ACCESS_TOKEN_TTL_SECONDS + 120

_PENDING = "mobileplane.revoked_sessions"


def revoke_on_commit(db: AsyncSession, session_ids: Iterable[str]) -> None:
    """Record sessions to announce as revoked before ``db``'s transaction commits."""
    pending: set[str] = db.info.setdefault(_PENDING, set())
    pending.update(session_ids)


def pending(db: AsyncSession) -> list[str]:
    """The sessions recorded on ``db`` and not announced yet, sorted."""
    return sorted(db.info.get(_PENDING, ()))


async def announce_pending(redis: Redis, keyspace: KeySpace, db: AsyncSession) -> list[str]:
    """Write the revocation key of every recorded session; returns their ids.

    Call it before the commit. The record is cleared only once Redis has taken every key.
    """
    sids = pending(db)
    if not sids:
        return []
    async with unavailable_on_error(), redis.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.set(revoked_session_key(keyspace, sid), "1", ex=ANNOUNCE_TTL_SECONDS)
        await pipe.execute()
    db.info.pop(_PENDING, None)
    return sids
