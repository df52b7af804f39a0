"""Settings: placeholder secrets refused, database URLs normalised, errors that name variables."""

from __future__ import annotations

import pytest

from mobileplane.services.kit.settings import (
    KitSettings,
    S3Settings,
    SettingsError,
    get_settings,
    is_placeholder,
    load_settings,
    normalize_database_url,
    redact_url,
)

BASE_ENV = {
    "DATABASE_URL": "postgresql://app:s3cr3t-Value@db:5432/app",
    "REDIS_URL": "redis://cache:6379/0",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*BASE_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "postgres://u:p1@h:5432/d", "postgresql+psycopg://u:p1@h:5432/d", id="postgres"
        ),
        pytest.param("postgresql://u@h/d", "postgresql+psycopg://u@h/d", id="postgresql"),
        pytest.param(
            "postgresql+psycopg://u@h/d?sslmode=require",
            "postgresql+psycopg://u@h/d?sslmode=require",
            id="already-normalised",
        ),
        pytest.param("POSTGRES://u@h/d", "postgresql+psycopg://u@h/d", id="scheme-case"),
        pytest.param(
            "postgresql://u@/d?host=/run/pg", "postgresql+psycopg://u@/d?host=/run/pg", id="socket"
        ),
    ],
)
def test_database_url_is_normalised(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("mysql://u@h/d", id="other-database"),
        pytest.param("postgresql+asyncpg://u@h/d", id="other-driver"),
        pytest.param("h:5432/d", id="no-scheme"),
        pytest.param("postgresql://u:changeme@h/d", id="placeholder-password"),
    ],
)
def test_bad_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        normalize_database_url(url)


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("changeme", True),
        ("  ChangeMe ", True),
        ("secret", True),
        ("password", True),
        ("", True),
        ("xxx", True),
        ("TODO", True),
        ("example", True),
        ("<your-key>", True),
        ("${AWS_SECRET}", True),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY-not", False),
        ("correct horse battery staple", False),
    ],
)
def test_placeholder_detection(value: str, placeholder: bool) -> None:
    assert is_placeholder(value) is placeholder


@pytest.mark.parametrize("secret", ["changeme", "", "password", "xxx", "todo", "example"])
def test_placeholder_secret_is_refused_naming_the_variable(
    env: pytest.MonkeyPatch, secret: str
) -> None:
    env.setenv("AWS_ACCESS_KEY_ID", "AKIA123")
    env.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(SettingsError) as raised:
        load_settings(S3Settings)
    assert "AWS_SECRET_ACCESS_KEY" in str(raised.value)
    assert "placeholder" in str(raised.value)


def test_secret_has_no_default(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_ACCESS_KEY_ID", "AKIA123")
    with pytest.raises(SettingsError, match="AWS_SECRET_ACCESS_KEY: required, not set"):
        load_settings(S3Settings)


def test_real_secret_is_kept_and_hidden(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_ACCESS_KEY_ID", "AKIA123")
    env.setenv("AWS_SECRET_ACCESS_KEY", "q8Yv-real-secret-3f9")
    settings = load_settings(S3Settings)
    assert settings.secret_access_key.get_secret_value() == "q8Yv-real-secret-3f9"
    assert "q8Yv" not in repr(settings)
    assert settings.region == "us-east-1"


def test_error_lists_every_problem_without_echoing_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2-leaked@h/d")
    with pytest.raises(SettingsError) as raised:
        load_settings(KitSettings)
    message = str(raised.value)
    assert "DATABASE_URL: must be a PostgreSQL URL" in message
    assert "REDIS_URL: required, not set" in message
    assert "hunter2" not in message


def test_kit_settings_from_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOG_LEVEL", "debug")
    env.setenv("SERVICE_NAME", "profiles")
    settings = load_settings(KitSettings)
    assert settings.database_url == "postgresql+psycopg://app:s3cr3t-Value@db:5432/app"
    assert settings.log_level == "DEBUG"
    assert settings.service_name == "profiles"
    assert settings.otel_exporter_otlp_endpoint is None


@pytest.mark.parametrize("url", ["http://cache:6379", "cache:6379"])
def test_non_redis_url_is_refused(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError, match="REDIS_URL"):
        load_settings(KitSettings)


def test_get_settings_is_lazy_and_cached(env: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    try:
        first = get_settings()
        env.setenv("SERVICE_NAME", "changed-after-first-load")
        assert get_settings() is first
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pw@h/d", "postgresql://u:***@h/d"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
