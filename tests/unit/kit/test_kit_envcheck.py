"""Variables a service was given but does not read: named, with the closest real name."""

from __future__ import annotations

import logging

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.kit.envcheck import env_names, read_by, unknown_settings
from mobileplane.services.kit.settings import KitSettings, S3Settings
from mobileplane.services.runner import RunnerError, check_environment, settings_classes


class _Aliased(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="x_")

    plain: int = 1
    other: int = Field(default=2, validation_alias="LEGACY_NAME")


def test_env_names_follow_prefixes_and_aliases() -> None:
    assert env_names(_Aliased) == {"X_PLAIN", "LEGACY_NAME"}
    assert {"AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"} <= env_names(S3Settings)
    assert {"DATABASE_URL", "REDIS_PREFIX", "SERVICE_NAME"} <= env_names(KitSettings)


@pytest.mark.parametrize(
    ("environ", "unknown"),
    [
        pytest.param({"AUTH_ISSUER": "x", "DATABASE_URL": "y"}, [], id="all-read"),
        pytest.param(
            {"AUTH_ACCESS_TOKEN_TTL": "60"},
            ["AUTH_ACCESS_TOKEN_TTL (did you mean AUTH_ACCESS_TOKEN_TTL_SECONDS?)"],
            id="a-typo-names-the-real-key",
        ),
        pytest.param({"auth_issuer": "x"}, [], id="case-insensitive-like-the-settings"),
        pytest.param({"AUTH_ZZZZ": "1"}, ["AUTH_ZZZZ"], id="nothing-close"),
        # Other services' keys come with the shared ConfigMap: not this service's business.
        pytest.param({"TELEMETRY_RETENTION_DAYS": "7", "HOME": "/tmp"}, [], id="other-prefixes"),
    ],
)
def test_unknown_settings(environ: dict[str, str], unknown: list[str]) -> None:
    assert unknown_settings(environ, "AUTH_", [KitSettings, AuthSettings]) == unknown


def test_every_service_reads_the_kit_and_its_own_settings() -> None:
    assert settings_classes("auth") == (KitSettings, AuthSettings)
    assert "AWS_SECRET_ACCESS_KEY" in read_by(settings_classes("content"))
    assert "GATEWAY_ROUTES_FILE" in read_by(settings_classes("gateway"))
    with pytest.raises(RunnerError, match="no service named"):
        settings_classes("nope")


def test_a_pod_refuses_a_misspelt_setting_and_a_shell_only_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    typo = {"SYNC_MAX_ROWS_PER_USR": "10"}
    with pytest.raises(RunnerError, match=r"SYNC_MAX_ROWS_PER_USR \(did you mean SYNC_MAX_ROWS"):
        check_environment("sync", {**typo, "KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    with caplog.at_level(logging.WARNING):
        check_environment("sync", typo)
    assert "SYNC_MAX_ROWS_PER_USR" in caplog.text
    check_environment("sync", {"SYNC_MAX_ROWS_PER_USER": "10", "KUBERNETES_SERVICE_HOST": "x"})
