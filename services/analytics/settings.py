"""The analytics service's settings (``ANALYTICS_*``), read once at startup.

The operator renders ``ANALYTICS_RETENTION_DAYS`` and ``ANALYTICS_IP_ANONYMIZATION`` from the
``MobilePlatform``; sources and write keys come from the admin API or ``ANALYTICS_SOURCES``
(a JSON list, created or updated at startup and refused at startup when invalid):

    [{"slug": "ios", "name": "iOS app", "write_keys": ["<write key>", ...]}]
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from mobileplane.services.kit.settings import KitSettings

KB = 1000  # Segment's documented limits are in KB ("32KB per call, 500KB per batch")
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
#: A write key: what the SDKs send as the Basic-auth user name (Segment's are 32 characters).
WRITE_KEY = r"^[A-Za-z0-9_-]{16,128}$"


class SourceSeed(BaseModel):
    """One source in ``ANALYTICS_SOURCES``: an app (or backend) sending events, its keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(pattern=SLUG)
    name: str | None = Field(default=None, max_length=200)
    write_keys: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _keys(self) -> SourceSeed:
        for key in self.write_keys:
            if not re.fullmatch(WRITE_KEY, key):
                raise ValueError("write keys are 16-128 letters, digits, '-' or '_'")
        return self


def parse_sources(raw_text: str | None) -> list[SourceSeed]:
    """``ANALYTICS_SOURCES`` as seeds; ``ValueError`` naming what is wrong (never a value)."""
    if not raw_text or not raw_text.strip():
        return []
    try:
        raw: Any = json.loads(raw_text)
    except ValueError as e:
        raise ValueError(f"ANALYTICS_SOURCES is not valid JSON ({e})") from None
    if not isinstance(raw, list):
        raise ValueError("ANALYTICS_SOURCES must be a JSON list of sources")
    seeds: list[SourceSeed] = []
    for index, item in enumerate(raw):
        try:
            seeds.append(SourceSeed.model_validate(item))
        except ValidationError as e:
            first = e.errors(include_input=False)[0]
            where = ".".join(str(p) for p in (index, *first["loc"]))
            raise ValueError(f"ANALYTICS_SOURCES: {where}: {first['msg']}") from None
    slugs = [s.slug for s in seeds]
    if len(set(slugs)) != len(slugs):
        raise ValueError("ANALYTICS_SOURCES: source slugs must be unique")
    keys = [k for s in seeds for k in s.write_keys]
    if len(set(keys)) != len(keys):
        raise ValueError("ANALYTICS_SOURCES: a write key belongs to one source only")
    return seeds


class AnalyticsSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    analytics_retention_days: int = Field(default=395, ge=1, le=3650)
    analytics_ip_anonymization: bool = Field(
        default=True, description="Zero the last IPv4 octet / keep only the IPv6 /48."
    )
    analytics_sources: str | None = Field(
        default=None, description="Sources and write keys to create at startup (JSON list)."
    )
    # Segment's documented limits: 32KB per message, 500KB per batch request.
    analytics_max_message_bytes: int = Field(default=32 * KB, ge=1024)
    analytics_max_batch_bytes: int = Field(default=500 * KB, ge=1024)
    analytics_max_batch_messages: int = Field(default=2500, ge=1)
    analytics_purge_interval_seconds: float = Field(default=3600, ge=0.05)
    analytics_key_cache_seconds: float = Field(
        default=10,
        ge=0,
        description="How long a replica trusts a cached write-key lookup (0: no cache); "
        "revoking a key takes effect within this time.",
    )

    @model_validator(mode="after")
    def _check(self) -> AnalyticsSettings:
        if self.analytics_max_message_bytes > self.analytics_max_batch_bytes:
            raise ValueError("ANALYTICS_MAX_MESSAGE_BYTES must not exceed the batch limit")
        self.seed_sources()  # refuse a bad ANALYTICS_SOURCES at startup
        return self

    def seed_sources(self) -> list[SourceSeed]:
        return parse_sources(self.analytics_sources)
