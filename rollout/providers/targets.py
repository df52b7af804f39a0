"""Which app version an action is about, as the store and app-config APIs name it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreTarget:
    package_name: str | None  # Google Play
    track: str  # Google Play
    app_id: str | None  # App Store Connect
    version: str  # marketing version (App Store versionString)
    build: str  # Google Play versionCode


@dataclass(frozen=True)
class AppConfigTarget:
    app: str
    platform: str  # ios | android
    version: str
