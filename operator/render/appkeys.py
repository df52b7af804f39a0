"""The apps' telemetry projects and DSN keys: one per platform the app ships on, made once.

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
public (they ship inside the app); the Secret only keeps them stable.
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

_KEY_PREFIX = "telemetry-key-"


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
    """Platforms of the app that have no DSN key yet (the caller generates one for each)."""
    return [p for p in app_platforms(spec) if not keys.get(p)]


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
    platform_ref: PlatformRef, spec: MobilePlatformSpec, keys: Mapping[str, str]
) -> dict[str, str]:
    """The (decoded) data of ``<name>-app-keys``: every key ever made, and the projects."""
    data = {key_name(p): k for p, k in sorted(keys.items())}
    data[PROJECTS_KEY] = json.dumps(telemetry_projects(platform_ref, spec, keys), sort_keys=True)
    return data


def dsn(gateway_url: str, public_key: str, project_id: int) -> str:
    """The Sentry DSN of a project, on the gateway apps use."""
    url = urlsplit(gateway_url)
    return f"{url.scheme}://{public_key}@{url.netloc}{url.path.rstrip('/')}/telemetry/{project_id}"


def apps_status(
    platform_ref: PlatformRef, spec: MobilePlatformSpec, keys: Mapping[str, str], gateway_url: str
) -> dict[str, dict[str, str]]:
    """``status.apps``: per app platform, its telemetry project and DSN."""
    return {
        p: {
            "telemetryProject": project_slug(platform_ref, p),
            "sentryDSN": dsn(gateway_url, keys[p], PROJECT_IDS[p]),
        }
        for p in app_platforms(spec)
        if keys.get(p)
    }
