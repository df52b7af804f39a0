"""The Sentry envelope format, parsed (pure): what an SDK posts to ``/api/<project>/envelope/``.

An envelope is a JSON header line followed by items; each item is a JSON header line and a
payload, either exactly ``length`` bytes (then a newline, optional at the very end) or, without
``length``, everything up to the next newline (https://develop.sentry.dev/sdk/envelopes/).
Bodies may be compressed with every encoding Sentry's ingestion accepts (``gzip``, ``deflate``,
``br``, ``zstd``: :mod:`mobileplane.services.kit.encoding`); decompression is bounded so a small
zip bomb cannot expand beyond the configured limit.

Everything malformed becomes an :class:`EnvelopeError` with a reason the client can read; a
body beyond a limit becomes :class:`EnvelopeTooLarge`. Item types we do not know are kept as
items (the caller ignores them), as Sentry does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mobileplane.services.kit import encoding as encoding_


class EnvelopeError(ValueError):
    """The envelope cannot be read; the message says where and why."""


class EnvelopeTooLarge(ValueError):
    """The envelope (or one item) is larger than the limit."""


class UnsupportedEncoding(EnvelopeError):
    """A ``Content-Encoding`` the endpoint does not decode."""


@dataclass(frozen=True)
class Item:
    type: str
    headers: Mapping[str, Any]
    payload: bytes

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object (raises :class:`EnvelopeError` otherwise)."""
        try:
            value = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise EnvelopeError(f"{self.type} item: payload is not valid JSON ({e})") from None
        if not isinstance(value, dict):
            raise EnvelopeError(f"{self.type} item: payload must be a JSON object")
        return value


@dataclass(frozen=True)
class Envelope:
    headers: Mapping[str, Any]
    items: tuple[Item, ...] = field(default_factory=tuple)
    header_line: bytes = b""


def decompress(body: bytes, encoding: str | None, *, limit: int) -> bytes:
    """``body`` decoded per ``Content-Encoding`` (:mod:`~mobileplane.services.kit.encoding`:
    gzip, deflate, br, zstd), refusing to produce more than ``limit`` bytes."""
    try:
        return encoding_.decode(body, encoding, limit=limit)
    except encoding_.DecodedTooLarge as e:
        raise EnvelopeTooLarge(f"envelope too large: {e}") from None
    except encoding_.UnsupportedEncoding as e:
        raise UnsupportedEncoding(str(e)) from None
    except encoding_.EncodingError as e:
        raise EnvelopeError(str(e)) from None


def _header(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(line) if line.strip() else None
    except (ValueError, UnicodeDecodeError) as e:
        raise EnvelopeError(f"{what} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object")
    return value


def parse(data: bytes, *, max_item_bytes: int, max_items: int = 1000) -> Envelope:
    """Parse a (decompressed) envelope body."""
    if not data.strip():
        raise EnvelopeError("envelope is empty")
    end = data.find(b"\n")
    header_line = data if end < 0 else data[:end]
    headers = _header(header_line, "envelope header")
    pos = len(data) if end < 0 else end + 1
    items: list[Item] = []
    while pos < len(data):
        end = data.find(b"\n", pos)
        line = data[pos:] if end < 0 else data[pos:end]
        if not line.strip():  # blank lines between items (and at the end) are tolerated
            pos = len(data) if end < 0 else end + 1
            continue
        number = len(items) + 1
        item_headers = _header(line, f"item {number} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"item {number} header has no type")
        pos = len(data) if end < 0 else end + 1
        length = item_headers.get("length")
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise EnvelopeError(f"item {number} ({item_type}): length must be an integer >= 0")
            if length > max_item_bytes:
                raise EnvelopeTooLarge(
                    f"item {number} ({item_type}) is {length} bytes; the limit is {max_item_bytes}"
                )
            if pos + length > len(data):
                raise EnvelopeError(
                    f"item {number} ({item_type}) is truncated: length {length} but "
                    f"{len(data) - pos} bytes remain"
                )
            payload = data[pos : pos + length]
            pos += length
            if pos < len(data):
                if data[pos : pos + 1] != b"\n":
                    raise EnvelopeError(
                        f"item {number} ({item_type}): payload is not followed by a newline"
                    )
                pos += 1
        else:
            end = data.find(b"\n", pos)
            payload = data[pos:] if end < 0 else data[pos:end]
            pos = len(data) if end < 0 else end + 1
            if len(payload) > max_item_bytes:
                raise EnvelopeTooLarge(
                    f"item {number} ({item_type}) is {len(payload)} bytes; "
                    f"the limit is {max_item_bytes}"
                )
        items.append(Item(item_type, item_headers, payload))
        if len(items) > max_items:
            raise EnvelopeTooLarge(f"envelope has more than {max_items} items")
    return Envelope(headers, tuple(items), header_line)
