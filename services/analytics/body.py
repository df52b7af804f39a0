"""Request bodies and write keys of the Tracking API (pure): decompression with a bound,
JSON with the values PostgreSQL can store, and the write key the SDKs present.

The SDKs authenticate like Segment's API: HTTP Basic with the write key as the user name and
an empty password (``Authorization: Basic base64("<write key>:")``); some HTTP clients put it
in the body's ``writeKey`` instead. Both may be present (analytics-python sends both) and must
then agree.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from mobileplane.services.kit import encoding


class BodyError(ValueError):
    """A body that cannot be read; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TooLarge(BodyError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 413, "payload_too_large")


class WriteKeyError(ValueError):
    """No usable write key; the message says why."""


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body, decompressed (gzip, deflate, br or zstd: :mod:`.kit.encoding`);
    :class:`TooLarge` when it is (or inflates) past ``limit``."""
    try:
        return encoding.decode(raw, content_encoding, limit=limit)
    except encoding.DecodedTooLarge as e:
        raise TooLarge(str(e)) from None
    except encoding.UnsupportedEncoding as e:
        raise BodyError(str(e), 415, "unsupported_media_type") from None
    except encoding.EncodingError as e:
        raise BodyError(str(e)) from None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def parse_json(data: bytes) -> Any:
    """The JSON document in ``data``; :class:`BodyError` with the reason otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("the body is not UTF-8") from None
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise BodyError("the JSON body is nested too deeply") from None
    except ValueError as e:
        raise BodyError(f"the body is not valid JSON ({str(e)[:120]})") from None


def write_key(authorization: str | None, body_key: object) -> str:
    """The write key of a request (see the module's docstring)."""
    header_key: str | None = None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise WriteKeyError(
                "unsupported Authorization scheme: send Basic auth with the write key as the "
                "user name"
            )
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise WriteKeyError("malformed Basic credentials") from None
        header_key = decoded.partition(":")[0]
        if not header_key:
            raise WriteKeyError("empty write key in the Basic credentials")
    if body_key is not None and not isinstance(body_key, str):
        raise WriteKeyError("writeKey must be a string")
    body = body_key or None
    if header_key is None and body is None:
        raise WriteKeyError(
            "missing write key: send HTTP Basic auth with the write key as the user name "
            "(or writeKey in the body)"
        )
    if header_key is not None and body is not None and header_key != body:
        raise WriteKeyError("the write keys in the Authorization header and the body differ")
    key = header_key or body
    assert key is not None
    if len(key) > 256 or not key.isprintable():
        raise WriteKeyError("malformed write key")
    return key
