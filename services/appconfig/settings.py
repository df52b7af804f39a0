"""The app-config service's settings (``APPCONFIG_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mobileplane.services.kit.settings import KitSettings


class AppConfigSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    # How long an app (or a CDN) may reuse an answer without asking again: the upper bound on
    # how late a halt reaches installed apps that poll. Revalidation is cheap (ETag -> 304).
    appconfig_max_age_seconds: int = Field(default=60, ge=0, le=3600)
