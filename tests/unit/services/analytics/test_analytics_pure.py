"""The analytics service's deciding code (pure): the Segment Spec rules, timestamps and the
clock-skew correction, IP anonymisation, bodies and write keys, traits folding, buckets."""

from __future__ import annotations

import base64
import gzip
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobileplane.services.analytics.body import (
    BodyError,
    TooLarge,
    WriteKeyError,
    decode_body,
    parse_json,
    write_key,
)
from mobileplane.services.analytics.buckets import (
    MAX_BUCKETS,
    Point,
    RangeError,
    bucket_start,
    buckets,
    series,
)
from mobileplane.services.analytics.fold import fold_traits, group_updates, links, profile_updates
from mobileplane.services.analytics.ingest import event_row
from mobileplane.services.analytics.ipanon import anonymize_ip, client_ip
from mobileplane.services.analytics.spec import (
    MessageError,
    MessageTooLarge,
    validate_batch,
    validate_message,
)
from mobileplane.services.analytics.timestamps import (
    TimestampError,
    corrected_time,
    parse_timestamp,
)

T = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
KB32 = 32_000


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- validation -----------------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("track", {"type": "track", "event": "Order Completed", "userId": "u1"}),
    ("track anonymous", {"type": "track", "event": "Opened", "anonymousId": "a1"}),
    ("identify", {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}),
    ("page", {"type": "page", "name": "Home", "anonymousId": "a1"}),
    ("screen no name", {"type": "screen", "userId": "u1"}),
    ("group", {"type": "group", "groupId": "g1", "userId": "u1"}),
    ("alias", {"type": "alias", "previousId": "a1", "userId": "u1"}),
    ("numeric user id", {"type": "track", "event": "x", "userId": 42}),
    ("upper-case type", {"type": "TRACK", "event": "x", "userId": "u"}),
    ("null objects", {"type": "track", "event": "x", "userId": "u", "properties": None}),
]


@pytest.mark.parametrize(("case", "raw"), VALID, ids=[c for c, _ in VALID])
def test_valid_messages(case: str, raw: dict[str, Any]) -> None:
    message = validate_message(raw, max_bytes=KB32)
    assert message.type == raw["type"].lower()
    assert message.message_id.startswith("auto-")


DEEP: dict[str, Any] = {}
_level = DEEP
for _ in range(70):
    _level["a"] = {}
    _level = _level["a"]

INVALID: list[tuple[str, Any, str]] = [
    ("not an object", ["track"], "JSON object"),
    ("no type", {"event": "x", "userId": "u"}, "type must be one of"),
    ("unknown type", {"type": "purchase", "userId": "u"}, "type must be one of"),
    ("no ids", {"type": "track", "event": "x"}, "userId or an anonymousId"),
    ("empty ids", {"type": "track", "event": "x", "userId": ""}, "userId or an anonymousId"),
    ("bool id", {"type": "track", "event": "x", "userId": True}, "userId must be a string"),
    ("object id", {"type": "track", "event": "x", "userId": {}}, "userId must be a string"),
    ("long id", {"type": "track", "event": "x", "userId": "u" * 300}, "longer than 256"),
    ("track no event", {"type": "track", "userId": "u"}, "non-empty event"),
    ("track blank event", {"type": "track", "event": "  ", "userId": "u"}, "non-empty event"),
    ("track event number", {"type": "track", "event": 5, "userId": "u"}, "event must be a str"),
    ("group no id", {"type": "group", "userId": "u"}, "needs a groupId"),
    ("alias no previous", {"type": "alias", "userId": "u"}, "previousId and userId"),
    ("alias no user", {"type": "alias", "previousId": "a", "anonymousId": "b"}, "previousId"),
    (
        "properties list",
        {"type": "track", "event": "x", "userId": "u", "properties": [1]},
        "properties must be an object",
    ),
    ("traits string", {"type": "identify", "userId": "u", "traits": "x"}, "traits must be"),
    ("context number", {"type": "identify", "userId": "u", "context": 1}, "context must be"),
    ("bad timestamp", {"type": "identify", "userId": "u", "timestamp": "yesterday"}, "ISO 8601"),
    ("timestamp number", {"type": "identify", "userId": "u", "timestamp": 1700000000}, "string"),
    ("bad sentAt", {"type": "identify", "userId": "u", "sentAt": "2026-13-01T00:00:00Z"}, "sentAt"),
    ("NUL", {"type": "track", "event": "a\x00b", "userId": "u"}, "NUL"),
    ("NUL key", {"type": "track", "event": "x", "userId": "u", "properties": {"\x00": 1}}, "NUL"),
    ("surrogate", {"type": "track", "event": "\ud800", "userId": "u"}, "not valid Unicode"),
    (
        "too deep",
        {"type": "track", "event": "x", "userId": "u", "properties": DEEP},
        "nested deeper than 64",
    ),
]


@pytest.mark.parametrize(("case", "raw", "reason"), INVALID, ids=[c for c, _, _ in INVALID])
def test_invalid_messages_say_why(case: str, raw: Any, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        validate_message(raw, max_bytes=KB32)


def test_size_limit_is_per_message() -> None:
    raw = {"type": "track", "event": "x", "userId": "u", "properties": {"p": "x" * 33_000}}
    with pytest.raises(MessageTooLarge):
        validate_message(raw, max_bytes=KB32)
    raw["properties"] = {"p": "x" * 31_000}
    validate_message(raw, max_bytes=KB32)


def test_single_call_type_comes_from_the_endpoint() -> None:
    assert validate_message({"event": "x", "userId": "u"}, max_bytes=KB32, implied_type="track")
    with pytest.raises(MessageError, match="sent to the track endpoint"):
        validate_message({"type": "identify", "userId": "u"}, max_bytes=KB32, implied_type="track")


def test_message_ids_are_kept_or_derived_from_the_content() -> None:
    raw = {"type": "track", "event": "x", "userId": "u", "messageId": "m-1"}
    assert validate_message(raw, max_bytes=KB32).message_id == "m-1"
    plain = {"type": "track", "event": "x", "userId": "u", "timestamp": "2026-11-25T10:00:00Z"}
    first = validate_message({**plain, "sentAt": "2026-11-25T10:00:01Z"}, max_bytes=KB32)
    retried = validate_message({**plain, "sentAt": "2026-11-25T10:05:00Z"}, max_bytes=KB32)
    other = validate_message({**plain, "event": "y"}, max_bytes=KB32)
    assert first.message_id == retried.message_id != other.message_id


def test_write_key_is_not_stored_and_batch_defaults_merge() -> None:
    body = {
        "writeKey": "k" * 20,
        "sentAt": "2026-11-25T10:00:05Z",
        "context": {"app": {"name": "shop"}, "locale": "en"},
        "batch": [
            {"type": "track", "event": "x", "userId": "u", "context": {"locale": "fr"}},
            {"type": "track", "event": "y", "userId": "u", "sentAt": "2026-11-25T10:00:09Z"},
        ],
    }
    batch = validate_batch(body, max_bytes=KB32, max_messages=10)
    first, second = batch.messages
    assert first.context == {"app": {"name": "shop"}, "locale": "fr"}
    assert first.sent_at == dt("2026-11-25T10:00:05+00:00")
    assert second.sent_at == dt("2026-11-25T10:00:09+00:00")
    assert "writeKey" not in first.payload


def test_a_batch_rejects_invalid_messages_one_by_one() -> None:
    body = {
        "batch": [
            {"type": "track", "event": "ok", "userId": "u", "messageId": "m1"},
            {"type": "track", "userId": "u", "messageId": "m2"},
            "garbage",
            {"type": "track", "event": "ok", "userId": "u", "messageId": "m1"},  # repeated
        ]
    }
    batch = validate_batch(body, max_bytes=KB32, max_messages=10)
    assert [m.message_id for m in batch.messages] == ["m1"]
    assert [r.as_json() for r in batch.rejected] == [
        {"index": 1, "messageId": "m2", "reason": "a track call needs a non-empty event"},
        {"index": 2, "messageId": None, "reason": "a message must be a JSON object"},
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "needs a batch"),
        ({"batch": {}}, "needs a batch"),
        ({"batch": [{}] * 11}, "at most 10 messages"),
        ({"batch": [], "context": []}, "context must be an object"),
        ({"batch": [], "context": DEEP}, "batch's context is nested deeper"),
        ({"batch": [], "context": {"a": "\x00"}}, "batch's context holds a NUL"),
    ],
)
def test_bad_batches(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        validate_batch(body, max_bytes=KB32, max_messages=10)


# -- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00+00:00"),
        ("2026-11-25T10:00:00.123Z", "2026-11-25T10:00:00.123000+00:00"),
        ("2026-11-25T10:00:00.123456789Z", "2026-11-25T10:00:00.123456+00:00"),
        ("2026-11-25T11:00:00+01:00", "2026-11-25T10:00:00+00:00"),
        ("2026-11-25T11:00:00+0100", "2026-11-25T10:00:00+00:00"),
        ("2026-11-25T10:00:00", "2026-11-25T10:00:00+00:00"),  # no zone: UTC
        ("2026-11-25", "2026-11-25T00:00:00+00:00"),
    ],
)
def test_parse_timestamp(text: str, expected: str) -> None:
    assert parse_timestamp(text, "t") == dt(expected)


@pytest.mark.parametrize(
    "value", ["", "now", "20261125", "2026-11-25T25:00:00Z", "1969-12-31T23:59:59Z", 5, []]
)
def test_parse_timestamp_refuses(value: Any) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(value, "t")


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "expected"),
    [
        # device clock 1h fast; event 10 s before sending -> 10 s before receipt
        (T + timedelta(hours=1), T + timedelta(hours=1, seconds=10), T - timedelta(seconds=10)),
        # device clock 1 day slow
        (T - timedelta(days=1, minutes=5), T - timedelta(days=1), T - timedelta(minutes=5)),
        # no sentAt: the timestamp as sent
        (T - timedelta(minutes=3), None, T - timedelta(minutes=3)),
        # no timestamp: receivedAt
        (None, T - timedelta(hours=5), T),
        # sentAt before timestamp (clock changed): clamped to receivedAt
        (T, T - timedelta(minutes=1), T),
        # a future timestamp without sentAt: clamped
        (T + timedelta(days=3), None, T),
        # absurd skew: not before 1970
        (
            datetime(1971, 1, 1, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
            datetime(1970, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_corrected_time(
    timestamp: datetime | None, sent_at: datetime | None, expected: datetime
) -> None:
    assert corrected_time(timestamp, sent_at, T) == expected


# -- IP anonymisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "anonymized", "plain"),
    [
        ("203.0.113.77", "203.0.113.0", "203.0.113.77"),
        ("10.1.2.3", "10.1.2.0", "10.1.2.3"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::", "2001:db8:abcd:12::1"),
        ("[2001:db8:abcd:ffff:1:2:3:4]", "2001:db8:abcd::", "2001:db8:abcd:ffff:1:2:3:4"),
        ("::ffff:198.51.100.9", "198.51.100.0", "198.51.100.9"),
        ("not an ip", None, None),
        ("", None, None),
        (None, None, None),
        (12345, None, None),
        ("1.2.3.4:80", None, None),
    ],
)
def test_ip_anonymisation(ip: Any, anonymized: str | None, plain: str | None) -> None:
    assert anonymize_ip(ip) == anonymized
    assert client_ip(ip, anonymize=True) == anonymized
    assert client_ip(ip, anonymize=False) == plain


def test_event_row_uses_context_ip_or_the_request_address() -> None:
    with_ip = validate_message(
        {"type": "track", "event": "x", "userId": "u", "context": {"ip": "203.0.113.77"}},
        max_bytes=KB32,
    )
    without = validate_message({"type": "track", "event": "x", "userId": "u"}, max_bytes=KB32)
    options: dict[str, Any] = {"source_id": 1, "received_at": T, "request_ip": "198.51.100.9"}
    row = event_row(with_ip, anonymize_ip=True, **options)
    assert row["ip"] == "203.0.113.0" and row["payload"]["context"]["ip"] == "203.0.113.0"
    assert event_row(without, anonymize_ip=True, **options)["ip"] == "198.51.100.0"
    assert event_row(without, anonymize_ip=False, **options)["ip"] == "198.51.100.9"
    options["request_ip"] = None
    assert "ip" not in event_row(without, anonymize_ip=True, **options)["payload"]["context"]


# -- bodies and write keys ------------------------------------------------------------------


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


KEY = "wk_" + "a" * 29


@pytest.mark.parametrize(
    ("authorization", "body_key", "expected"),
    [
        (basic(KEY), None, KEY),
        (None, KEY, KEY),
        (basic(KEY), KEY, KEY),
        (basic(KEY, "ignored"), None, KEY),
        ("basic " + base64.b64encode(f"{KEY}:".encode()).decode(), None, KEY),
    ],
)
def test_write_key(authorization: str | None, body_key: Any, expected: str) -> None:
    assert write_key(authorization, body_key) == expected


@pytest.mark.parametrize(
    ("authorization", "body_key", "reason"),
    [
        (None, None, "missing write key"),
        (None, "", "missing write key"),
        (None, 5, "must be a string"),
        ("Bearer abc", None, "unsupported Authorization"),
        ("Basic !!!", None, "malformed"),
        (basic(""), None, "empty write key"),
        (basic(KEY), "other-key-000000", "differ"),
        (basic("key\x00with-nul-000"), None, "malformed write key"),
        (None, "k" * 300, "malformed write key"),
    ],
)
def test_write_key_refusals(authorization: str | None, body_key: Any, reason: str) -> None:
    with pytest.raises(WriteKeyError, match=reason):
        write_key(authorization, body_key)


def test_decode_body() -> None:
    data = b'{"batch": []}'
    assert decode_body(data, None, 100) == data
    assert decode_body(gzip.compress(data), "gzip", 100) == data
    assert decode_body(zlib.compress(data), "deflate", 100) == data
    with pytest.raises(TooLarge):
        decode_body(b"x" * 101, None, 100)
    # a zip bomb stops at the limit
    with pytest.raises(TooLarge, match="decompresses to more than"):
        decode_body(gzip.compress(b"0" * 50_000_000), "gzip", 500_000)
    with pytest.raises(BodyError, match="not valid gzip"):
        decode_body(b"plain", "gzip", 100)
    with pytest.raises(BodyError, match="truncated"):
        decode_body(gzip.compress(data)[:-6], "gzip", 100)
    with pytest.raises(BodyError, match="unsupported Content-Encoding") as e:
        decode_body(data, "compress", 100)
    assert e.value.status == 415


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": 1e999}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
    ],
)
def test_parse_json_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(BodyError, match=reason):
        parse_json(data)


# -- traits folding -------------------------------------------------------------------------


def test_fold_traits_in_time_order() -> None:
    updates = fold_traits(
        [
            ("u1", {"plan": "pro", "name": "Ann"}, T + timedelta(minutes=2)),
            ("u1", {"plan": "free", "city": "Oslo"}, T),
            ("u1", None, T + timedelta(minutes=5)),
            ("u0", None, T),
        ]
    )
    assert [u.key for u in updates] == ["u0", "u1"]
    u1 = updates[1]
    assert u1.traits == {"plan": "pro", "name": "Ann", "city": "Oslo"}
    assert u1.traits_at == T + timedelta(minutes=2)
    assert (u1.first_seen, u1.last_seen) == (T, T + timedelta(minutes=5))
    assert updates[0].traits_at is None


def test_profiles_groups_and_links_of_a_batch() -> None:
    def msg(raw: dict[str, Any]) -> Any:
        return validate_message(raw, max_bytes=KB32)

    batch = [
        (msg({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"x": 1}}), T),
        (msg({"type": "track", "event": "e", "userId": "u2"}), T),
        (msg({"type": "alias", "previousId": "old", "userId": "u1"}), T),
        (msg({"type": "group", "groupId": "g", "userId": "u1", "traits": {"n": "Acme"}}), T),
    ]
    assert {u.key: u.traits for u in profile_updates(batch)} == {"u1": {"x": 1}, "u2": {}}
    assert {u.key: u.traits for u in group_updates(batch)} == {"g": {"n": "Acme"}}
    assert [(lk.anonymous_id, lk.user_id, lk.kind) for lk in links(batch)] == [
        ("a1", "u1", "identify"),
        ("old", "u1", "alias"),
    ]


# -- buckets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "interval", "expected"),
    [
        ("2026-11-25T10:59:59.999+00:00", "hour", "2026-11-25T10:00:00+00:00"),
        ("2026-11-25T10:59:59+00:00", "day", "2026-11-25T00:00:00+00:00"),
        ("2026-11-25T01:30:00+02:00", "day", "2026-11-24T00:00:00+00:00"),
        ("2026-11-25T01:30:00+02:00", "hour", "2026-11-24T23:00:00+00:00"),
    ],
)
def test_bucket_start(at: str, interval: Any, expected: str) -> None:
    assert bucket_start(dt(at), interval) == dt(expected)


@pytest.mark.parametrize(
    ("start", "end", "interval", "count"),
    [
        ("2026-11-25T00:00:00+00:00", "2026-11-26T00:00:00+00:00", "day", 1),
        ("2026-11-25T00:00:00+00:00", "2026-11-26T00:00:00+00:00", "hour", 24),
        ("2026-11-25T10:30:00+00:00", "2026-11-25T12:00:01+00:00", "hour", 3),
        ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00", "day", 30),
        ("2026-11-25T23:00:00+00:00", "2026-11-26T00:30:00+00:00", "day", 2),
    ],
)
def test_buckets_cover_the_range(start: str, end: str, interval: Any, count: int) -> None:
    got = buckets(dt(start), dt(end), interval)
    assert len(got) == count
    assert got[0] <= dt(start) < got[0] + (got[1] - got[0] if count > 1 else timedelta(days=1))


@pytest.mark.parametrize(
    ("start", "end", "interval", "reason"),
    [
        (T, T, "day", "after start"),
        (T, T - timedelta(hours=1), "hour", "after start"),
        (T, T + timedelta(hours=MAX_BUCKETS + 1), "hour", "at most"),
        (T, datetime(9999, 12, 31, 23, tzinfo=UTC), "hour", "at most"),
    ],
)
def test_buckets_refuse(start: datetime, end: datetime, interval: Any, reason: str) -> None:
    with pytest.raises(RangeError, match=reason):
        buckets(start, end, interval)


def test_series_fills_empty_buckets_with_zero() -> None:
    start = dt("2026-11-25T00:00:00+00:00")
    points = series(start, start + timedelta(days=3), "day", {start + timedelta(days=1): (5, 2)})
    assert points == [
        Point(start, 0, 0),
        Point(start + timedelta(days=1), 5, 2),
        Point(start + timedelta(days=2), 0, 0),
    ]
