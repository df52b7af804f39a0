"""The envelope parser and DSN auth (pure): well-formed, truncated, garbage, oversized."""

from __future__ import annotations

import gzip
import zlib

import pytest

from mobileplane.services.telemetry.auth import AuthError, parse_auth_header, public_key
from mobileplane.services.telemetry.envelope import (
    EnvelopeError,
    EnvelopeTooLarge,
    UnsupportedEncoding,
    decompress,
    parse,
)

KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("body", "types", "payloads"),
    [
        pytest.param(
            b'{"event_id":"a"}\n{"type":"event","length":7}\n{"a":1}\n',
            ["event"],
            [b'{"a":1}'],
            id="length-with-trailing-newline",
        ),
        pytest.param(
            b'{}\n{"type":"event","length":7}\n{"a":1}',
            ["event"],
            [b'{"a":1}'],
            id="length-at-end-without-newline",
        ),
        pytest.param(
            b'{}\n{"type":"session"}\n{"sid":1}\n{"type":"attachment","length":3}\na\nb\n',
            ["session", "attachment"],
            [b'{"sid":1}', b"a\nb"],
            id="implicit-length-then-binary-with-newline",
        ),
        pytest.param(b"{}\n", [], [], id="header-only"),
        pytest.param(b"{}", [], [], id="header-without-newline"),
        pytest.param(
            b'{}\n{"type":"event","length":0}\n\n{"type":"x"}\n{}\n',
            ["event", "x"],
            [b"", b"{}"],
            id="empty-payload",
        ),
    ],
)
def test_parses(body: bytes, types: list[str], payloads: list[bytes]) -> None:
    envelope = parse(body, max_item_bytes=1000)
    assert [i.type for i in envelope.items] == types
    assert [i.payload for i in envelope.items] == payloads


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"not json\n", "envelope header is not valid JSON", id="garbage"),
        pytest.param(b"[1]\n", "must be a JSON object", id="header-not-object"),
        pytest.param(b'{}\n{"length":2}\n{}\n', "has no type", id="item-without-type"),
        pytest.param(
            b'{}\n{"type":"event","length":50}\n{"a":1}\n', "truncated", id="truncated-item"
        ),
        pytest.param(
            b'{}\n{"type":"event","length":2}\n{"a":1}\n', "not followed by a newline", id="overrun"
        ),
        pytest.param(b'{}\n{"type":"event","length":-1}\n', "length must be", id="negative"),
        pytest.param(b"{}\n\xff\xfe\n", "item 1 header is not valid JSON", id="binary-header"),
    ],
)
def test_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        parse(body, max_item_bytes=1000)


def test_item_limit() -> None:
    with pytest.raises(EnvelopeTooLarge):
        parse(b'{}\n{"type":"event","length":2000}\n' + b"x" * 2000, max_item_bytes=1000)
    with pytest.raises(EnvelopeTooLarge):
        parse(b'{}\n{"type":"event"}\n' + b"x" * 2000, max_item_bytes=1000)
    with pytest.raises(EnvelopeTooLarge, match="more than 2 items"):
        parse(b"{}\n" + b'{"type":"x"}\n{}\n' * 3, max_item_bytes=1000, max_items=2)


def test_item_json() -> None:
    envelope = parse(b'{}\n{"type":"event"}\n[1]\n{"type":"event"}\nnope\n', max_item_bytes=99)
    with pytest.raises(EnvelopeError, match="must be a JSON object"):
        envelope.items[0].json()
    with pytest.raises(EnvelopeError, match="not valid JSON"):
        envelope.items[1].json()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        (None, lambda b: b),
        ("identity", lambda b: b),
    ],
)
def test_decompress(encoding: str | None, encode: object) -> None:
    data = b"{}\n" * 100
    assert callable(encode)
    assert decompress(encode(data), encoding, limit=10_000) == data


def test_decompress_refuses() -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 2000
    with pytest.raises(EnvelopeTooLarge):
        decompress(bomb, "gzip", limit=10_000)
    with pytest.raises(EnvelopeError, match="truncated"):
        decompress(gzip.compress(b"x" * 1000)[:-12], "gzip", limit=10_000)
    with pytest.raises(EnvelopeError, match="not valid gzip"):
        decompress(b"plain text", "gzip", limit=10_000)
    with pytest.raises(UnsupportedEncoding, match="unsupported Content-Encoding"):
        decompress(b"x", "compress", limit=10_000)
    with pytest.raises(EnvelopeTooLarge):
        decompress(b"x" * 20, None, limit=10)


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"x-sentry-auth": f"Sentry sentry_key={KEY}, sentry_version=7"}, {}, KEY),
        ({"x-sentry-auth": f"sentry_version=7,sentry_key={KEY}"}, {}, KEY),
        ({"authorization": f"Sentry sentry_key={KEY}"}, {}, KEY),
        ({}, {"sentry_key": KEY}, KEY),
        ({"x-sentry-auth": f"Sentry sentry_key={KEY}"}, {"sentry_key": KEY}, KEY),
    ],
)
def test_public_key(headers: dict[str, str], query: dict[str, str], expected: str) -> None:
    assert public_key(headers, query) == expected


@pytest.mark.parametrize(
    ("headers", "query", "reason"),
    [
        ({}, {}, "missing DSN key"),
        ({"x-sentry-auth": "Sentry sentry_version=7"}, {}, "missing DSN key"),
        ({"x-sentry-auth": "Sentry sentry_key=short"}, {}, "malformed"),
        ({"x-sentry-auth": "Sentry sentry_key=a'b;--drop-table-x"}, {}, "malformed"),
        ({"x-sentry-auth": f"Sentry sentry_key={KEY}"}, {"sentry_key": "f" * 32}, "conflicting"),
    ],
)
def test_public_key_refused(headers: dict[str, str], query: dict[str, str], reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        public_key(headers, query)


def test_parse_auth_header() -> None:
    assert parse_auth_header("Sentry a=1, b = 2,c") == {"a": "1", "b": "2"}
