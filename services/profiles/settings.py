"""The profiles service's settings (``PROFILES_*``), read once at startup."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.profiles.settings_schema import (
    SettingsSchema,
    SettingsSchemaError,
    parse_settings_schema,
)


class ProfilesSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    profiles_avatar_bucket: str | None = Field(
        default=None, description="S3 bucket for avatars; unset: avatar endpoints answer 503."
    )
    #: 5 MiB: a phone photo after the app's resize; larger is a client bug, not an avatar.
    profiles_avatar_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    profiles_avatar_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
    profiles_url_ttl_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    profiles_settings_schema: str | None = Field(
        default=None, description="JSON Schema of a profile's settings (inline JSON)."
    )
    profiles_settings_schema_file: Path | None = None
    #: How often each replica looks for unpublished events besides the wake-up after a commit
    #: (covers events committed by another replica whose relay died before publishing).
    profiles_relay_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    profiles_relay_batch: int = Field(default=100, ge=1, le=10_000)
    #: Stream length kept (approximately, ``XADD MAXLEN ~``): consumers more than this many
    #: events behind have lost events; size it to the longest consumer outage you tolerate.
    profiles_events_maxlen: int = Field(default=100_000, ge=100)
    #: Published outbox rows are kept this long (for export and debugging), then purged.
    profiles_outbox_retention_hours: int = Field(default=24, ge=1)

    def settings_schema(self) -> SettingsSchema:
        """The declared settings schema (raises :class:`SettingsSchemaError` saying why not)."""
        if self.profiles_settings_schema and self.profiles_settings_schema_file:
            raise SettingsSchemaError(
                "set PROFILES_SETTINGS_SCHEMA or PROFILES_SETTINGS_SCHEMA_FILE, not both"
            )
        if self.profiles_settings_schema_file:
            try:
                text = self.profiles_settings_schema_file.read_text()
            except OSError as e:
                raise SettingsSchemaError(
                    f"PROFILES_SETTINGS_SCHEMA_FILE cannot be read: {e}"
                ) from None
            return parse_settings_schema(text)
        return parse_settings_schema(self.profiles_settings_schema or None)
