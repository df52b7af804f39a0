"""Checkpoint tokens and paging cursors: opaque to clients, tamper-evident (issue 21 §4).

A token is a small JSON payload (a checkpoint's ``{bucket: op id}``, or a cursor's progress
through a download) that the client stores and hands back. It used to be bare base64url JSON,
so a client could forge any position; now the server MACs it and accepts only what it made::

    v1.<kid>.<payload>.<mac>

- ``payload`` is base64url (unpadded) of the canonical JSON (sorted keys, no spaces);
- ``mac`` is base64url (unpadded) of HMAC-SHA256 under the key ``kid`` names, over
  ``mobileplane.sync.<kind>.v1.<kid>.<payload>``: the ``kind`` (``checkpoint`` or ``cursor``)
  is in the MAC, so a token of one kind is refused as the other;
- ``kid`` is :func:`key_id` of the key: the first 12 characters of base64url(SHA-256) of a
  label and the key. Derived, never chosen, so rotating a key needs no naming and two keys can
  never share an id by mistake. It reveals nothing a token's MAC does not already expose.

Keys come from ``SYNC_CHECKPOINT_KEYS`` (:func:`parse_keys`): comma-separated, the first signs,
every key listed verifies. Rotation: prepend a new key (old tokens still verify), later drop
the old one; a token under a key no longer listed is refused like a forged one and the client
resyncs from scratch (docs/sync-protocol.md §5, ``invalid_checkpoint``). The MAC is checked
before the payload is parsed, in constant time (:func:`hmac.compare_digest`), on the encoded
form, so a token has exactly one valid spelling.

Pure: no I/O, no clock; the keys are given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from mobileplane.services.kit.settings import is_placeholder

#: What a token is for; part of the MAC, so one kind cannot stand in for the other.
TokenKind = Literal["checkpoint", "cursor"]

VERSION = "v1"
#: No shorter than HMAC-SHA256's output, 32 bytes (RFC 2104 §3 discourages shorter keys),
#: so a password cannot pass for a key; the operator and the quick start make 43 base64url
#: characters (32 random bytes).
MIN_KEY_CHARS = 32
_KID_LABEL = b"mobileplane sync checkpoint key\n"
_KID_CHARS = 12


class TokenError(ValueError):
    """A checkpoint token or cursor is not one this server issued (forged, altered, truncated,
    signed with a key it no longer holds, or of the old unsigned format)."""


class KeyConfigError(ValueError):
    """``SYNC_CHECKPOINT_KEYS`` is unusable; the message never contains a key."""


@dataclass(frozen=True)
class TokenKey:
    kid: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class TokenKeys:
    """The key that signs new tokens, and every key that verifies (it first)."""

    signing: TokenKey
    retained: tuple[TokenKey, ...] = ()

    def by_kid(self, kid: str) -> TokenKey | None:
        return next((k for k in (self.signing, *self.retained) if k.kid == kid), None)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_id(secret: bytes) -> str:
    return _b64(hashlib.sha256(_KID_LABEL + secret).digest())[:_KID_CHARS]


def parse_keys(text: str) -> TokenKeys:
    """``SYNC_CHECKPOINT_KEYS``: ``current[,previous…]``; raises :class:`KeyConfigError`."""
    items = [item.strip() for item in text.split(",")]
    if not items or not items[0]:
        raise KeyConfigError("needs at least one key (the first signs new tokens)")
    keys: list[TokenKey] = []
    for position, item in enumerate(items, start=1):
        if len(item) < MIN_KEY_CHARS or is_placeholder(item):
            raise KeyConfigError(
                f"key {position} is shorter than {MIN_KEY_CHARS} characters or a placeholder; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        key = TokenKey(kid=key_id(item.encode()), secret=item.encode())
        if any(k.kid == key.kid for k in keys):
            raise KeyConfigError(f"key {position} is listed twice")
        keys.append(key)
    return TokenKeys(signing=keys[0], retained=tuple(keys[1:]))


def _mac(key: TokenKey, kind: TokenKind, payload: str) -> str:
    message = f"mobileplane.sync.{kind}.{VERSION}.{key.kid}.{payload}".encode()
    return _b64(hmac.new(key.secret, message, hashlib.sha256).digest())


def seal(keys: TokenKeys, kind: TokenKind, payload: dict[str, Any]) -> str:
    """The token of ``payload``, MAC'd with the signing key."""
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    body = _b64(raw)
    key = keys.signing
    return f"{VERSION}.{key.kid}.{body}.{_mac(key, kind, body)}"


def unseal(keys: TokenKeys, kind: TokenKind, token: str) -> dict[str, Any]:
    """The payload of a token this server sealed as ``kind``; else :class:`TokenError`."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise TokenError(f"the {kind} token is malformed or of an older, unsigned format")
    _, kid, body, mac = parts
    key = keys.by_kid(kid)
    if key is None:
        raise TokenError(f"the {kind} token was signed with a key this server does not hold")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a query string may hold any.
    if not hmac.compare_digest(_mac(key, kind, body).encode(), mac.encode("utf-8", "replace")):
        raise TokenError(f"the {kind} token's MAC does not match: it was altered or forged")
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError(f"the {kind} token is malformed") from None
    if not isinstance(payload, dict):
        raise TokenError(f"the {kind} token is malformed")
    return payload


def positions(keys: TokenKeys, token: str | None) -> dict[str, int]:
    """``{bucket: op id}`` of a checkpoint token (empty: nothing synced yet)."""
    if not token:
        return {}
    payload = unseal(keys, "checkpoint", token)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in payload.values()):
        raise TokenError("the checkpoint token is malformed")
    return {str(k): int(v) for k, v in payload.items()}
