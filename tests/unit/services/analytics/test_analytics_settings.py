"""ANALYTICS_* settings: defaults, and ANALYTICS_SOURCES refused at startup when invalid."""

from __future__ import annotations

import json

import pytest

from mobileplane.services.analytics.settings import AnalyticsSettings, parse_sources
from mobileplane.services.kit.settings import SettingsError, load_settings

KEY = "k" * 32
KIT = {"database_url": "postgresql://app@localhost/app", "redis_url": "redis://localhost"}


def test_defaults() -> None:
    settings = AnalyticsSettings(**KIT)
    assert settings.analytics_retention_days == 395
    assert settings.analytics_ip_anonymization is True
    assert settings.analytics_max_message_bytes == 32_000
    assert settings.analytics_max_batch_bytes == 500_000
    assert settings.seed_sources() == []


def test_operator_rendered_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_RETENTION_DAYS", "30")
    monkeypatch.setenv("ANALYTICS_IP_ANONYMIZATION", "false")
    settings = load_settings(AnalyticsSettings, **KIT)
    assert settings.analytics_retention_days == 30
    assert settings.analytics_ip_anonymization is False


@pytest.mark.parametrize(
    ("raw", "slugs"),
    [
        (None, []),
        ("", []),
        ("[]", []),
        (json.dumps([{"slug": "ios", "write_keys": [KEY]}]), ["ios"]),
        (json.dumps([{"slug": "ios", "name": "iOS"}, {"slug": "android"}]), ["ios", "android"]),
    ],
)
def test_parse_sources(raw: str | None, slugs: list[str]) -> None:
    assert [s.slug for s in parse_sources(raw)] == slugs


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{", "not valid JSON"),
        ('{"slug": "ios"}', "JSON list"),
        (json.dumps([{"slug": "iOS"}]), "0.slug"),
        (json.dumps([{"slug": "ios", "extra": 1}]), "0.extra"),
        (json.dumps([{"slug": "ios", "write_keys": ["short"]}]), "write keys are"),
        (json.dumps([{"slug": "ios"}, {"slug": "ios"}]), "unique"),
        (
            json.dumps([{"slug": "a", "write_keys": [KEY]}, {"slug": "b", "write_keys": [KEY]}]),
            "one source only",
        ),
    ],
)
def test_parse_sources_refuses(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sources(raw)


def test_a_bad_seed_is_refused_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_SOURCES", '[{"slug": "Bad Slug"}]')
    with pytest.raises(SettingsError, match="ANALYTICS_SOURCES"):
        load_settings(AnalyticsSettings, **KIT)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ANALYTICS_RETENTION_DAYS", "0"),
        ("ANALYTICS_MAX_MESSAGE_BYTES", "600000"),  # over the batch limit
        ("ANALYTICS_IP_ANONYMIZATION", "maybe"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError):
        load_settings(AnalyticsSettings, **KIT)
