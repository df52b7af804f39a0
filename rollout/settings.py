"""The release controller's settings (``MOBILEPLANE_RELEASE_*``), read once at start-up.

Every tunable has its reason next to it; the Helm chart sets these one to one.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReleaseSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="mobileplane_release_", case_sensitive=False, extra="ignore", frozen=True
    )

    #: How often the controller looks at each release. A decision is re-run when the engine's
    #: ``requeue_after`` is due; the tick is only the resolution of that clock.
    tick_seconds: float = Field(default=5.0, gt=0, le=300)
    #: The longest wait between two looks at a release that is collecting data: bounds how
    #: late a crash spike is noticed (the engine asks for 30 s; tests use 1 s).
    max_requeue_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: Retry delay after a provider (Unleash, a store, app-config) failed.
    action_retry_seconds: float = Field(default=15.0, gt=0, le=3600)
    #: Where a platform's telemetry and app-config services answer; ``{platform}`` (the
    #: MobilePlatform's child base name) and ``{namespace}`` are filled in. A release's
    #: ``release.mobileplane.io/telemetry-url`` / ``appconfig-url`` annotation wins.
    telemetry_url: str = "http://{platform}-telemetry.{namespace}.svc:8080"
    appconfig_url: str = "http://{platform}-appconfig.{namespace}.svc:8080"
    #: Unleash Admin API (the API base, e.g. ``http://unleash:4242/api``) and an admin token;
    #: without them flags are not managed and a release with flags reports it.
    unleash_url: str | None = None
    unleash_token: SecretStr | None = None
    unleash_project: str = "default"
    unleash_environment: str = "production"
    #: The stores' API base URLs (tests point them at local protocol-faithful endpoints).
    google_play_url: str = "https://androidpublisher.googleapis.com"
    app_store_url: str = "https://api.appstoreconnect.apple.com"
    #: Every outgoing call's timeout: a hung backend is a failed measurement, not a hung
    #: controller.
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: kopf peering: one active controller replica.
    peering_name: str = "mobileplane-release"
    standalone: bool = False
