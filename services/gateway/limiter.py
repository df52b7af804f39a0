"""Rate limits and revoked sessions in Redis: one round trip per request, shared by replicas.

The GCRA arithmetic of ``ratelimit.py`` runs in a Lua script, so checking and counting every
quota of a request is one atomic step on Redis's clock (``TIME``): replicas never race, and
their clocks do not matter. The script returns Redis's time and the stored TATs; the
response headers are then computed by the pure :func:`ratelimit.decide` from the same
numbers (the script formats them with microsecond precision and both sides parse the same
decimal strings, so they agree on every decision). The revoked-session check
(``kit.identity.revoked_session_key``) is done by the same script: its key is the last of
``KEYS``. One ``EVALSHA`` is one round trip — a pipeline carrying a registered script would
not be: redis-py sends ``SCRIPT EXISTS`` before every such pipeline, a second round trip per
request. (``NOSCRIPT`` after a Redis restart or ``SCRIPT FLUSH`` is handled by redis-py's
``Script``, which loads the script and calls it again.)

When Redis cannot be reached the configuration decides (``GATEWAY_RATE_LIMIT_FAIL_OPEN``,
``GATEWAY_REVOCATION_FAIL_OPEN``): fail open lets the request through unlimited (or
unchecked), fail closed answers 503. Rate limits fail open by default — a cache outage
should not take the API down — and revocation fails closed: a signed-out device must stay
out, and a Redis outage is shorter than most sessions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import exceptions as redis_exceptions
from redis.asyncio import Redis

from mobileplane.services.gateway.ratelimit import Counted, Limits, Verdict, applicable, decide
from mobileplane.services.kit.errors import Unavailable
from mobileplane.services.kit.identity import Identity, revoked_session_key
from mobileplane.services.kit.redis import KeySpace

_log = logging.getLogger("mobileplane.gateway.limiter")

# KEYS: one bucket per quota, then (when ARGV[1] is 1) the revoked-session key.
# ARGV: 1/0 (is there a session key), then interval and tolerance (seconds) per bucket.
# Returns {now, admitted (1/0), revoked (1/0), tat_1 or "", ...}; admitted requests store the
# new TATs with a TTL of the time until the bucket is full again (then the key means nothing).
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000))
local has_session = ARGV[1] == '1'
local buckets = #KEYS
if has_session then buckets = buckets - 1 end
local admitted = 1
local stored = {}
local next_tats = {}
for i = 1, buckets do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local raw = redis.call('GET', KEYS[i])
  stored[i] = raw or ''
  local current = now
  local tat = raw and tonumber(raw)
  if tat and tat > now then current = tat end
  local new_tat = current + interval
  if now < new_tat - tolerance - 1e-9 then admitted = 0 end
  next_tats[i] = new_tat
end
if admitted == 1 then
  for i = 1, buckets do
    local ttl = math.max(1, math.ceil((next_tats[i] - now) * 1000))
    redis.call('SET', KEYS[i], string.format('%.6f', next_tats[i]), 'PX', ttl)
  end
end
local revoked = 0
if has_session then revoked = redis.call('EXISTS', KEYS[#KEYS]) end
local out = {string.format('%.6f', now), admitted, revoked}
for i = 1, buckets do out[#out + 1] = stored[i] end
return out
"""


@dataclass(frozen=True)
class Admission:
    """What Redis said: the rate-limit verdict (``None``: not checked) and revocation."""

    verdict: Verdict | None
    revoked: bool


class Guard:
    """Counts requests against their quotas and looks up revoked sessions."""

    def __init__(
        self,
        redis: Redis,
        keyspace: KeySpace,
        limits: Limits,
        *,
        rate_limit_fail_open: bool,
        revocation_fail_open: bool,
    ) -> None:
        self._redis = redis
        self._keyspace = keyspace
        self._buckets = keyspace.child("gateway").child("ratelimit")
        self._limits = limits
        self._script = redis.register_script(GCRA_SCRIPT)
        self._rate_limit_fail_open = rate_limit_fail_open
        self._revocation_fail_open = revocation_fail_open

    def bucket_key(self, counted: Counted) -> str:
        return self._buckets.key(counted.quota.name, counted.identifier)

    async def admit(
        self, *, route: str, client_ip: str | None, identity: Identity | None
    ) -> Admission:
        counted = applicable(
            self._limits,
            subject=identity.subject if identity else None,
            client_ip=client_ip,
            route=route,
        )
        session = identity.session_id if identity else None
        if not counted and session is None:
            return Admission(None, revoked=False)
        keys = [self.bucket_key(c) for c in counted]
        args = ["1" if session is not None else "0"]
        for c in counted:
            args += [repr(c.quota.interval), repr(c.quota.window_seconds)]
        if session is not None:
            keys.append(revoked_session_key(self._keyspace, session))
        try:
            result = await self._script(keys=keys, args=args)
        except redis_exceptions.RedisError as e:
            return self._redis_down(e, counted=bool(counted), session=session is not None)
        now_raw, _admitted, revoked, *stored = result
        verdict: Verdict | None = None
        if counted:
            tats = [float(s) if s else None for s in stored]
            verdict = decide(tats, float(now_raw), counted)
        return Admission(verdict, revoked=session is not None and bool(revoked))

    def _redis_down(self, error: Exception, *, counted: bool, session: bool) -> Admission:
        _log.warning("Redis unavailable for rate limits and revocations: %s", error)
        if (counted and not self._rate_limit_fail_open) or (
            session and not self._revocation_fail_open
        ):
            raise Unavailable(
                "The gateway cannot check rate limits or sessions right now", retry_after=1
            ) from error
        return Admission(None, revoked=False)
