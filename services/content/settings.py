"""The content service's settings (``CONTENT_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mobileplane.services.kit.settings import KitSettings


class ContentSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    content_media_bucket: str | None = Field(
        default=None, description="S3 bucket for media; unset: media endpoints answer 503."
    )
    content_media_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    content_media_types: tuple[str, ...] = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "video/mp4",
        "audio/mpeg",
        "application/pdf",
    )
    content_cache_ttl_seconds: int = Field(default=60, ge=1, le=3600)
    content_url_ttl_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
