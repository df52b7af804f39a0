"""Request bodies in every Content-Encoding the SDKs send, decoded with a bound (pure).

SDKs compress what they upload, each its own way: sentry-python uses brotli when the
``brotli`` module is importable and gzip otherwise, other Sentry SDKs gzip, deflate or zstd,
the Segment SDKs gzip. Sentry's own ingestion (Relay) accepts ``gzip``, ``deflate``, ``br``
and ``zstd``; so do our ingestion endpoints (telemetry and analytics), through this module.

A few hundred compressed bytes can expand to gigabytes (a "zip bomb"), so every decoder is
driven incrementally and stops one byte past ``limit``: the output never grows beyond the
limit, whatever the body. Several codings (``Content-Encoding: gzip, br``) are undone in
reverse order, each bounded. ``deflate`` is HTTP's zlib-wrapped stream; a raw deflate stream,
which some clients send under that name, is accepted too.

Errors carry the HTTP status a route answers: 415 for an encoding we do not speak (the message
lists those we do), 413 past the limit, 400 for a body that is not what its header says.
"""

from __future__ import annotations

import io
import zlib

import brotli
import zstandard

#: The codings accepted, as a client reads them in an error message.
SUPPORTED = ("gzip", "deflate", "br", "zstd", "identity")


class EncodingError(ValueError):
    """A body that cannot be decoded; ``status`` is the HTTP status to answer."""

    status = 400


class UnsupportedEncoding(EncodingError):
    status = 415


class DecodedTooLarge(EncodingError):
    status = 413


def codings(content_encoding: str | None) -> list[str]:
    """The codings of a ``Content-Encoding`` header, in the order they were applied."""
    return [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]


def decode(body: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone; never more than ``limit`` bytes."""
    data = body
    for coding in reversed(codings(content_encoding)):  # the last applied is listed last
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, 16 + zlib.MAX_WBITS, limit, "gzip")
        elif coding == "deflate":
            raw = len(data) < 2 or (data[0] & 0x0F != 8 or (data[0] << 8 | data[1]) % 31 != 0)
            data = _inflate(data, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS, limit, "deflate")
        elif coding == "br":
            data = _unbrotli(data, limit)
        elif coding == "zstd":
            data = _unzstd(data, limit)
        else:
            raise UnsupportedEncoding(
                f"unsupported Content-Encoding {coding[:40]!r}: send one of {', '.join(SUPPORTED)}"
            )
    if len(data) > limit:
        raise DecodedTooLarge(f"the body is {len(data)} bytes; the limit is {limit}")
    return data


def _too_large(coding: str, limit: int) -> DecodedTooLarge:
    return DecodedTooLarge(f"the {coding} body decompresses to more than {limit} bytes")


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise EncodingError(f"the body is not valid {coding} data ({e})") from None
    if len(out) > limit:
        raise _too_large(coding, limit)
    if not inflater.eof:
        raise EncodingError(f"the {coding} body is truncated")
    return out


def _unbrotli(data: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    chunks: list[bytes] = []
    total = 0
    feed = data
    try:
        while True:
            # The output buffer stops growing at the limit; more comes with empty input.
            piece = decompressor.process(feed, output_buffer_limit=limit + 1 - total)
            feed = b""
            chunks.append(piece)
            total += len(piece)
            if total > limit:
                raise _too_large("br", limit)
            if decompressor.is_finished():
                return b"".join(chunks)
            if decompressor.can_accept_more_data():  # input used up, stream not finished
                raise EncodingError("the br body is truncated")
    except brotli.error as e:
        raise EncodingError(f"the body is not valid br data ({e})") from None


def _unzstd(data: bytes, limit: int) -> bytes:
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        out = reader.read(limit + 1)  # bounded, but silent about a truncated frame
        if len(out) > limit:
            raise _too_large("zstd", limit)
        # The whole output is known to fit now: decode again frame by frame, to tell a
        # complete body from a truncated one.
        rest = data
        while rest:
            frame = zstandard.ZstdDecompressor().decompressobj()
            frame.decompress(rest)
            if not frame.eof:
                raise EncodingError("the zstd body is truncated")
            rest = frame.unused_data
    except zstandard.ZstdError as e:
        raise EncodingError(f"the body is not valid zstd data ({e})") from None
    return out
