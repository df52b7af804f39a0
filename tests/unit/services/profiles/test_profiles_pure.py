"""The settings schema, conditional requests and event encoding of the profiles service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mobileplane.services.profiles.conditional import (
    Precondition,
    check_if_match,
    etag_for,
    none_match,
)
from mobileplane.services.profiles.events import CREATED, UPDATED, ProfileEvent, new_event
from mobileplane.services.profiles.settings_schema import (
    SettingsSchemaError,
    parse_settings_schema,
)

TAG = etag_for(b"profile")


@pytest.mark.parametrize(
    ("header", "required", "outcome"),
    [
        (None, True, Precondition.MISSING),
        ("  ", True, Precondition.MISSING),
        (None, False, Precondition.HOLDS),
        (TAG, True, Precondition.HOLDS),
        (f'"other", {TAG}', True, Precondition.HOLDS),
        ("*", True, Precondition.HOLDS),
        (f"W/{TAG}", True, Precondition.FAILED),  # If-Match compares strongly
        ('"stale"', True, Precondition.FAILED),
        ('"stale"', False, Precondition.FAILED),
    ],
)
def test_if_match(header: str | None, required: bool, outcome: Precondition) -> None:
    assert check_if_match(header, TAG, required=required) is outcome


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), (TAG, True), (f"W/{TAG}", True), ("*", True), ('"x"', False)],
)
def test_if_none_match_compares_weakly(header: str | None, matches: bool) -> None:
    assert none_match(header, TAG) is matches


def test_etags_are_strong_and_follow_the_bytes() -> None:
    assert TAG.startswith('"') and TAG.endswith('"')
    assert etag_for(b"profile") == TAG != etag_for(b"profile ")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"type": "nonsense"}', "not a valid JSON Schema"),
        ('{"type": "array"}', "must describe an object"),
        ('{"properties": {"a": {"$ref": "https://example.com/s.json"}}}', "remote \\$ref"),
    ],
)
def test_unusable_settings_schemas_are_refused_at_startup(source: str, reason: str) -> None:
    with pytest.raises(SettingsSchemaError, match=reason):
        parse_settings_schema(source)


def test_a_declared_schema_reports_each_failing_path_as_a_json_pointer() -> None:
    schema = parse_settings_schema(
        """{"type": "object", "additionalProperties": false,
            "$defs": {"level": {"enum": ["low", "high"]}},
            "properties": {
                "volume": {"$ref": "#/$defs/level"},
                "a/b": {"type": "object", "properties": {"c~d": {"type": "integer"}}}}}"""
    )
    problems = schema.problems({"volume": "max", "a/b": {"c~d": "1"}, "extra": 1})
    assert [p.path for p in problems] == ["", "/a~1b/c~0d", "/volume"]
    assert "'extra' was unexpected" in problems[0].message
    assert schema.problems({"volume": "low"}) == []


def test_events_round_trip_through_stream_fields() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    event = new_event(UPDATED, "user-1", now, version=3, changed=["locale"], event_id="e-1")
    fields = event.stream_fields()
    assert fields == {
        "id": "e-1",
        "type": "profile.updated",
        "subject": "user-1",
        "occurred_at": "2026-11-25T12:00:00+00:00",
        "data": '{"changed":["locale"],"version":3}',
    }
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    assert ProfileEvent.from_stream_fields(raw) == event


def test_events_get_distinct_ids_and_carry_no_profile_content() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    first, second = new_event(CREATED, "u", now, version=1), new_event(CREATED, "u", now)
    assert first.id != second.id
    assert dict(first.data) == {"version": 1}


def test_unknown_event_types_are_refused() -> None:
    fields = new_event(CREATED, "u", datetime(2026, 1, 1, tzinfo=UTC)).stream_fields()
    with pytest.raises(ValueError, match="unknown"):
        ProfileEvent.from_stream_fields({**fields, "type": "profile.exploded"})
