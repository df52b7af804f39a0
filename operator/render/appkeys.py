"""The apps' ingestion keys: a telemetry project with its Sentry DSN key, and an analytics
source with its Segment write key, per platform the app ships on; made once.

A Sentry SDK in the app sends crashes and sessions with a DSN,
``https://<public key>@<gateway host>/telemetry/<project id>``, compiled into each build, so
neither part may ever change. For each platform of ``spec.app`` (iOS, Android) the operator
seeds one telemetry project:

- slug ``<platform name>-<ios|android>``: the name the release controller reads release
  health by (``rollout/state.py``), so a MobileRelease works without annotations;
- a fixed id per platform (:data:`PROJECT_IDS`), the DSN's path;
- a random public key (the caller makes it: the renderer has no randomness), kept in Secret
  ``<name>-app-keys`` and never regenerated. A platform removed from the spec keeps its key
  there, so adding it back brings back the same DSN.

Telemetry reads the projects from that Secret at startup (``TELEMETRY_PROJECTS``, created or
updated, ids and keys fixed), and the MobilePlatform's status shows each DSN: DSN keys are
public (they ship inside the app); the Secret only keeps them stable. Analytics likewise
reads ``ANALYTICS_SOURCES`` (source ``<platform name>-<ios|android>``, its write key), and
the status shows each write key (public too: Segment SDKs ship it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mobileplane.operator.render.inputs import PlatformRef
from mobileplane.operator.spec import MobilePlatformSpec

#: Telemetry project ids by app platform: the path of the DSNs.
PROJECT_IDS = {"ios": 1, "android": 2}

#: The key of ``<name>-app-keys`` holding the ``TELEMETRY_PROJECTS`` JSON.
PROJECTS_KEY = "telemetry-projects.json"
#: The key of ``<name>-app-keys`` holding the ``ANALYTICS_SOURCES`` JSON.
SOURCES_KEY = "analytics-sources.json"

_KEY_PREFIX = "telemetry-key-"
_WRITE_KEY_PREFIX = "analytics-write-key-"


def app_platforms(spec: MobilePlatformSpec) -> list[str]:
    """The platforms the app ships on, in :data:`PROJECT_IDS` order."""
    present = {"ios": spec.app.ios is not None, "android": spec.app.android is not None}
    return [p for p in PROJECT_IDS if present[p]]


def key_name(platform: str) -> str:
    """The Secret key holding ``platform``'s DSN public key."""
    return f"{_KEY_PREFIX}{platform}"


def stored_keys(data: Mapping[str, str] | None) -> dict[str, str]:
    """The DSN keys in (decoded) ``<name>-app-keys`` data, by platform."""
    return {
        k.removeprefix(_KEY_PREFIX): v for k, v in (data or {}).items() if k.startswith(_KEY_PREFIX)
    }


def missing_platforms(spec: MobilePlatformSpec, keys: Mapping[str, str]) -> list[str]:
    """Platforms of the app that have no key yet in ``keys`` (the caller makes one each)."""
    return [p for p in app_platforms(spec) if not keys.get(p)]


def stored_write_keys(data: Mapping[str, str] | None) -> dict[str, str]:
    """The analytics write keys in (decoded) ``<name>-app-keys`` data, by platform."""
    items = (data or {}).items()
    return {
        k.removeprefix(_WRITE_KEY_PREFIX): v for k, v in items if k.startswith(_WRITE_KEY_PREFIX)
    }


def analytics_sources(
    platform_ref: PlatformRef, spec: MobilePlatformSpec, write_keys: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``ANALYTICS_SOURCES``: a source per app platform that has a write key."""
    return [
        {
            "slug": project_slug(platform_ref, p),
            "name": f"{spec.app.display_name} ({'iOS' if p == 'ios' else 'Android'})",
            "write_keys": [write_keys[p]],
        }
        for p in app_platforms(spec)
        if write_keys.get(p)
    ]


def project_slug(platform_ref: PlatformRef, platform: str) -> str:
    return f"{platform_ref.name}-{platform}"


def telemetry_projects(
    platform_ref: PlatformRef, spec: MobilePlatformSpec, keys: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``TELEMETRY_PROJECTS``: a project per app platform that has a key."""
    return [
        {
            "id": PROJECT_IDS[p],
            "slug": project_slug(platform_ref, p),
            "name": f"{spec.app.display_name} ({'iOS' if p == 'ios' else 'Android'})",
            "platform": p,
            "keys": [{"public_key": keys[p], "label": "operator"}],
        }
        for p in app_platforms(spec)
        if keys.get(p)
    ]


def app_keys_data(
    platform_ref: PlatformRef,
    spec: MobilePlatformSpec,
    keys: Mapping[str, str],
    write_keys: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The (decoded) data of ``<name>-app-keys``: every key ever made, the projects and the
    sources."""
    write_keys = write_keys or {}
    data = {key_name(p): k for p, k in sorted(keys.items())}
    data.update({f"{_WRITE_KEY_PREFIX}{p}": k for p, k in sorted(write_keys.items())})
    data[PROJECTS_KEY] = json.dumps(telemetry_projects(platform_ref, spec, keys), sort_keys=True)
    data[SOURCES_KEY] = json.dumps(
        analytics_sources(platform_ref, spec, write_keys), sort_keys=True
    )
    return data


def dsn(gateway_url: str, public_key: str, project_id: int) -> str:
    """The Sentry DSN of a project, on the gateway apps use."""
    url = urlsplit(gateway_url)
    return f"{url.scheme}://{public_key}@{url.netloc}{url.path.rstrip('/')}/telemetry/{project_id}"


def apps_status(
    platform_ref: PlatformRef,
    spec: MobilePlatformSpec,
    keys: Mapping[str, str],
    gateway_url: str,
    write_keys: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """``status.apps``: per app platform, its telemetry project and DSN, and its analytics
    write key when analytics runs."""
    out: dict[str, dict[str, str]] = {}
    for p in app_platforms(spec):
        if not keys.get(p):
            continue
        out[p] = {
            "telemetryProject": project_slug(platform_ref, p),
            "sentryDSN": dsn(gateway_url, keys[p], PROJECT_IDS[p]),
        }
        if write_keys and write_keys.get(p):
            out[p]["analyticsWriteKey"] = write_keys[p]
    return out
