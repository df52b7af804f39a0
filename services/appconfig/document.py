"""What an app is told at start, decided from the stored rows — pure, table-tested.

The public document of an app lists, per platform, the latest version, the minimum supported
version and the **halted** versions (a release the release controller stopped: its crash rate
failed the gates), plus the app's **kill switches**. Given the caller's own platform and
version, it also says what that install must do:

- ``halted`` — this exact version was stopped: the app should turn off what the release
  introduced, or ask the user to update;
- ``update_required`` — older than the minimum supported version;
- ``update_available`` — older than the latest version.

Versions compare like semantic versions, leniently (``2.10.0`` > ``2.9.1``; a pre-release
``2.0.0-beta.1`` < ``2.0.0``; missing parts are zeros; non-numeric parts compare as text), so
marketing versions that are not strict semver still order the way people expect.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PLATFORMS = ("ios", "android")
VERSION = r"^[0-9A-Za-z.+-]{1,64}$"
NAME = r"^[a-z0-9][a-z0-9._-]{0,99}$"

_PART = re.compile(r"(\d+)|([A-Za-z]+)")


def version_key(version: str) -> tuple[tuple[tuple[int, int | str], ...], int, tuple[Any, ...]]:
    """A sort key: numeric core, then release after pre-release, then pre-release parts.

    Build metadata (``+...``) is ignored, as in SemVer.
    """
    text = version.split("+", 1)[0]
    core, _, pre = text.partition("-")
    numbers = [int(p) if p.isascii() and p.isdigit() else p for p in core.split(".") if p != ""]
    while numbers and numbers[-1] == 0:
        numbers.pop()  # 2.0 == 2.0.0
    core_key = tuple((0, n) if isinstance(n, int) else (1, n) for n in numbers)
    pre_key = tuple(
        (0, int(m.group(1))) if m.group(1) else (1, m.group(2)) for m in _PART.finditer(pre)
    )
    return core_key, (0 if pre else 1), pre_key


def older(a: str, b: str) -> bool:
    """Whether version ``a`` is before version ``b``."""
    return version_key(a) < version_key(b)


@dataclass(frozen=True)
class PlatformRow:
    platform: str
    latest_version: str | None
    min_supported_version: str | None


@dataclass(frozen=True)
class HaltedRow:
    platform: str
    version: str
    reason: str
    halted_at: datetime


@dataclass(frozen=True)
class KillSwitchRow:
    name: str
    enabled: bool
    message: str


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def document(
    app: str,
    platforms: Iterable[PlatformRow],
    halted: Iterable[HaltedRow],
    switches: Iterable[KillSwitchRow],
) -> dict[str, Any]:
    """The public document of ``app`` (stable key order, so equal state gives equal bytes)."""
    by_platform: dict[str, dict[str, Any]] = {}
    for row in sorted(platforms, key=lambda r: r.platform):
        by_platform[row.platform] = {
            "latest_version": row.latest_version,
            "min_supported_version": row.min_supported_version,
            "halted_versions": [],
        }
    for h in sorted(halted, key=lambda r: (r.platform, version_key(r.version))):
        entry = by_platform.setdefault(
            h.platform,
            {"latest_version": None, "min_supported_version": None, "halted_versions": []},
        )
        entry["halted_versions"].append(
            {"version": h.version, "reason": h.reason, "halted_at": _stamp(h.halted_at)}
        )
    return {
        "app": app,
        "platforms": dict(sorted(by_platform.items())),
        "kill_switches": {
            s.name: {"enabled": s.enabled, "message": s.message}
            for s in sorted(switches, key=lambda s: s.name)
        },
    }


def client_status(doc: Mapping[str, Any], platform: str, version: str) -> dict[str, Any]:
    """What an install of ``version`` on ``platform`` must do (see the module docstring)."""
    entry = doc["platforms"].get(platform) or {}
    halted: Sequence[Mapping[str, Any]] = entry.get("halted_versions") or []
    match = next((h for h in halted if h["version"] == version), None)
    latest = entry.get("latest_version")
    minimum = entry.get("min_supported_version")
    return {
        "platform": platform,
        "version": version,
        "halted": match is not None,
        "halted_reason": match["reason"] if match else None,
        "update_required": minimum is not None and older(version, str(minimum)),
        "update_available": latest is not None and older(version, str(latest)),
    }


def etag_for(body: bytes) -> str:
    """A strong ETag of the exact bytes served (equal state, equal bytes, any replica)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` matches ``etag`` (weak comparison, RFC 9110)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
