"""DSN authentication (pure): the public key a Sentry SDK presents, and where it put it.

SDKs send ``X-Sentry-Auth: Sentry sentry_key=<public key>, sentry_version=7, sentry_client=…``
(browsers, which cannot set that header, send ``?sentry_key=…`` in the query instead). Some
clients put the same string in ``Authorization`` (the Sentry CLI, relays). Only the public key
matters: a DSN's secret part has been deprecated since protocol version 7.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_KEY = re.compile(r"[A-Za-z0-9]{16,64}")


class AuthError(ValueError):
    """No usable DSN key; the message says what is missing."""


def parse_auth_header(value: str) -> dict[str, str]:
    """``Sentry sentry_key=abc, sentry_version=7`` -> ``{"sentry_key": "abc", …}``."""
    text = value.strip()
    if text[:6].lower() == "sentry":
        text = text[6:]
    pairs: dict[str, str] = {}
    for part in text.split(","):
        name, sep, val = part.strip().partition("=")
        if sep and name.strip():
            pairs[name.strip().lower()] = val.strip()
    return pairs


def public_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """The public key of the request, from the auth header or the query string."""
    candidates: list[str] = []
    for name in ("x-sentry-auth", "authorization"):
        raw = headers.get(name)
        if raw:
            key = parse_auth_header(raw).get("sentry_key")
            if key:
                candidates.append(key)
    if query.get("sentry_key"):
        candidates.append(query["sentry_key"])
    if not candidates:
        raise AuthError(
            "missing DSN key: send X-Sentry-Auth: Sentry sentry_key=<public key> "
            "or ?sentry_key=<public key>"
        )
    key = candidates[0]
    if not _KEY.fullmatch(key):
        raise AuthError("malformed DSN key: expected 16-64 letters and digits")
    if any(other != key for other in candidates[1:]):
        raise AuthError("conflicting DSN keys in the auth header and the query string")
    return key
