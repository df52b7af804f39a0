"""The telemetry service's settings (``TELEMETRY_*``), read once at startup.

The operator renders the retention, the traces sample rate and the stability targets from the
``MobilePlatform``'s ``telemetry`` section (percent, as there); the rest have defaults.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from mobileplane.services.kit.settings import KitSettings

Platform = Literal["ios", "android", "python", "javascript", "java", "cocoa", "other"]
MiB = 1024 * 1024


class KeySeed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    public_key: str = Field(pattern=r"^[A-Za-z0-9]{16,64}$")
    label: str = ""
    enabled: bool = True
    rate_limit_per_minute: int | None = Field(default=None, ge=1)


class ProjectSeed(BaseModel):
    """One project in ``TELEMETRY_PROJECTS``: an app on one platform, and its DSN keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int | None = Field(default=None, ge=1, description="Fixed project id (the DSN's path).")
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str | None = None
    platform: Platform
    keys: tuple[KeySeed, ...] = ()
    category_limits: dict[str, int] = Field(default_factory=dict)


class TelemetrySettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    telemetry_retention_days: int = Field(default=90, ge=1, le=3650)
    telemetry_traces_sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Share of traces kept (server-side, by trace id)."
    )
    telemetry_crash_free_sessions_target: float = Field(default=99.5, ge=0, le=100)
    telemetry_crash_free_sessions_critical: float = Field(default=99.0, ge=0, le=100)
    telemetry_crash_free_users_target: float = Field(default=99.0, ge=0, le=100)
    telemetry_crash_free_users_critical: float = Field(default=98.0, ge=0, le=100)
    telemetry_projects: str | None = Field(
        default=None, description="Projects and DSN keys to create at startup (JSON list)."
    )
    telemetry_artifacts_bucket: str | None = Field(
        default=None, description="S3 bucket for ProGuard mappings and dSYMs; unset: 503."
    )
    telemetry_public_url: str | None = Field(
        default=None, description="Public base URL apps reach (for the DSNs the API shows)."
    )
    # Limits. Sentry's own: 1 MiB per event, 200 MiB per envelope; ours are tighter because
    # an envelope is read into memory and processed inside one request.
    telemetry_max_body_bytes: int = Field(default=20 * MiB, ge=1024)
    telemetry_max_envelope_bytes: int = Field(default=50 * MiB, ge=1024)
    telemetry_max_item_bytes: int = Field(default=20 * MiB, ge=1024)
    telemetry_max_event_bytes: int = Field(default=1 * MiB, ge=1024)
    telemetry_max_artifact_bytes: int = Field(default=256 * MiB, ge=1024)
    telemetry_max_otlp_bytes: int = Field(default=10 * MiB, ge=1024)
    telemetry_key_rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="Default events/minute per DSN key (none: unlimited)."
    )
    telemetry_key_cache_seconds: float = Field(
        default=10,
        ge=0,
        description="How long a replica trusts its cached DSN key lookup (0: no cache); "
        "disabling a key takes effect within this time.",
    )
    telemetry_purge_interval_seconds: int = Field(default=3600, ge=10)

    @model_validator(mode="after")
    def _targets(self) -> TelemetrySettings:
        for what in ("sessions", "users"):
            target = getattr(self, f"telemetry_crash_free_{what}_target")
            critical = getattr(self, f"telemetry_crash_free_{what}_critical")
            if critical > target:
                raise ValueError(
                    f"TELEMETRY_CRASH_FREE_{what.upper()}_CRITICAL must not exceed the target"
                )
        self.seed_projects()  # refuse a bad TELEMETRY_PROJECTS at startup
        return self

    def seed_projects(self) -> list[ProjectSeed]:
        if not self.telemetry_projects:
            return []
        try:
            raw: Any = json.loads(self.telemetry_projects)
        except ValueError as e:
            raise ValueError(f"TELEMETRY_PROJECTS is not valid JSON ({e})") from None
        if not isinstance(raw, list):
            raise ValueError("TELEMETRY_PROJECTS must be a JSON list of projects")
        try:
            seeds = [ProjectSeed.model_validate(p) for p in raw]
        except ValidationError as e:
            first = e.errors(include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"TELEMETRY_PROJECTS: {where}: {first['msg']}") from None
        slugs = [s.slug for s in seeds]
        if len(set(slugs)) != len(slugs):
            raise ValueError("TELEMETRY_PROJECTS: project slugs must be unique")
        return seeds
