"""The issuer's public keys (a JWKS) as the gateway holds them, and when to fetch them again.

The gateway caches the JWKS and looks keys up by ``kid``. Two events make it fetch again:

- the cached set is older than ``max_age`` (keys removed from the JWKS stop being trusted);
- a token names a ``kid`` the cache does not hold: the issuer has probably rotated its key,
  and the new key must validate at once. Unknown kids are also what a forger sends, so such
  refetches are rate-limited: at most one per ``min_refetch_interval`` (failed fetches
  count too); between them, an unknown kid is simply unknown (401).

After a rotation the JWKS publishes the new key *and* the old one (``operator/keys.py``), so
tokens signed with the old key keep validating until they expire.

Only asymmetric signing keys are kept: keys with ``use`` other than ``sig``, symmetric
(``oct``) keys and keys of algorithms outside :data:`KEY_TYPES` are skipped, never trusted.

Pure: parsing and the decision take data and the time; ``jwks.py`` fetches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from jwt.exceptions import PyJWTError

#: Signature algorithms by key type; asymmetric only (see ``tokens.py``).
KEY_TYPES: Mapping[str, str] = {
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "EdDSA": "OKP",
}

#: A JWKS with more keys than this is refused: ours holds an active key and at most four
#: passive ones (``operator/keys.py``), and parsing each costs.
MAX_KEYS = 32


class JwksError(ValueError):
    """The document is not a usable JWK Set."""


@dataclass(frozen=True)
class PublicKey:
    kid: str
    key_type: str  # kty: EC, RSA or OKP
    algorithm: str | None  # the JWK's alg, when it declares one
    key: Any  # a cryptography public key object, as pyjwt builds it


@dataclass(frozen=True)
class KeyRing:
    """The keys of one fetched JWKS, by ``kid``; ``fetched_at`` on the gateway's clock."""

    keys: Mapping[str, PublicKey]
    fetched_at: float


def parse_jwks(document: Any, fetched_at: float) -> KeyRing:
    """The usable keys of a JWK Set (RFC 7517 §5); keys we would never trust are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('a JWK Set is a JSON object with a "keys" array')
    entries = document["keys"]
    if len(entries) > MAX_KEYS:
        raise JwksError(f"the JWK Set holds more than {MAX_KEYS} keys")
    keys: dict[str, PublicKey] = {}
    for entry in entries:
        parsed = _parse_key(entry)
        if parsed is not None and parsed.kid not in keys:
            keys[parsed.kid] = parsed
    return KeyRing(keys=keys, fetched_at=fetched_at)


def _parse_key(entry: Any) -> PublicKey | None:
    if not isinstance(entry, dict):
        return None
    kid, kty, alg, use = (entry.get(k) for k in ("kid", "kty", "alg", "use"))
    if not isinstance(kid, str) or not kid or kty not in set(KEY_TYPES.values()):
        return None
    if use is not None and use != "sig":
        return None
    if alg is not None and (alg not in KEY_TYPES or KEY_TYPES[alg] != kty):
        return None
    if any(private in entry for private in ("d", "p", "q", "k")):
        return None  # a private or symmetric key published by mistake: trust nothing of it
    try:
        # pyjwt needs an algorithm to build the key object; any of the key type's will do,
        # the signature check passes the token's own (allowed) algorithm.
        default = next(a for a, t in KEY_TYPES.items() if t == kty)
        built = jwt.PyJWK(entry, algorithm=alg or default)
    except (PyJWTError, ValueError, TypeError):
        return None
    return PublicKey(kid=kid, key_type=str(kty), algorithm=alg, key=built.key)


Lookup = Literal["use", "fetch", "unknown"]


@dataclass
class KeyCacheState:
    """What the cache knows: the last good key ring and when it last tried to fetch."""

    ring: KeyRing | None = None
    last_attempt_at: float | None = None


def lookup_decision(
    state: KeyCacheState,
    kid: str,
    now: float,
    *,
    max_age: float,
    min_refetch_interval: float,
) -> Lookup:
    """Whether to use the cached key for ``kid``, fetch the JWKS first, or call it unknown.

    >>> s = KeyCacheState(KeyRing({}, fetched_at=0.0), last_attempt_at=0.0)
    >>> lookup_decision(s, "new", 5.0, max_age=300, min_refetch_interval=30)
    'unknown'
    >>> lookup_decision(s, "new", 31.0, max_age=300, min_refetch_interval=30)
    'fetch'
    """
    ring = state.ring
    recently_tried = (
        state.last_attempt_at is not None and now - state.last_attempt_at < min_refetch_interval
    )
    if ring is None:
        return "unknown" if recently_tried else "fetch"
    if kid in ring.keys:
        stale = now - ring.fetched_at >= max_age
        return "fetch" if stale and not recently_tried else "use"
    return "unknown" if recently_tried else "fetch"
