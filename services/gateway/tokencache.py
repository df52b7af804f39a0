"""Access tokens whose signature the gateway has verified, remembered for a short while.

Checking an access token's signature (base64 and JSON parsing, then an ES256/RS256 verify in
pyjwt) is the largest part of the gateway's own work on a request. A client sends the same
token on every request for minutes, so the gateway keeps, per token, the claims it verified
and the key it verified them with. What a hit skips, and what it never skips:

- **skipped**: the header checks and the signature (``tokens.read_header``,
  ``tokens.verify_signature``). The entry is found by the SHA-256 of the exact token string,
  so the bytes are the ones that were verified; the cache does not keep the token itself;
- **still done on every request**, by the caller: the claim checks (``tokens.check_claims``:
  ``exp``, ``nbf``, ``iat``, ``iss``, ``aud``, ``sub``, scope syntax) at the current time,
  the revoked-session lookup in Redis, and the route's required scopes;
- **the key**: the caller looks the ``kid`` up in the JWKS cache on every hit and uses the
  entry only if it gets the very key object the signature was verified with. Every JWKS
  fetch builds new key objects, so after a refetch (a rotation, a removed key, or the
  periodic refresh) each token is verified once more;
- **lifetime**: an entry expires at ``min(exp + leeway, verified_at + ttl)``; the cache
  holds at most ``max_entries`` and drops the least recently used past that.

Failures are not remembered: a bad token costs its full check each time (the rate limits
bound how often). Pure: no I/O, the clock is a parameter.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mobileplane.services.gateway.keyring import PublicKey


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified token left behind: its claims and the key that verified them."""

    claims: Mapping[str, Any]
    kid: str
    key: PublicKey
    expires_at: float


def fingerprint(token: str) -> bytes:
    """The cache key of ``token``: its SHA-256 (the token itself is not kept)."""
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokens:
    """A bounded LRU of :class:`VerifiedToken` by token fingerprint."""

    def __init__(self, *, max_entries: int, ttl: float, leeway: float) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError("a token cache needs max_entries >= 1 and ttl > 0")
        self.max_entries = max_entries
        self.ttl = ttl
        self.leeway = leeway
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> VerifiedToken | None:
        """The entry for ``token`` if there is one still valid at ``now``."""
        key = fingerprint(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(
        self, token: str, claims: Mapping[str, Any], *, kid: str, key: PublicKey, now: float
    ) -> None:
        """Remember that ``token`` verified with ``key`` at ``now``, with ``claims``.

        Call it only for a token that passed every check; one whose ``exp`` is missing or not
        a number is not kept.
        """
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return
        expires_at = min(float(exp) + self.leeway, now + self.ttl)
        if expires_at <= now:
            return
        fp = fingerprint(token)
        frozen = MappingProxyType(dict(claims))  # read-only: shared by every later request
        self._entries[fp] = VerifiedToken(claims=frozen, kid=kid, key=key, expires_at=expires_at)
        self._entries.move_to_end(fp)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
