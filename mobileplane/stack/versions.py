"""The pinned versions of every stack component, read from ``versions.toml`` beside this file.

One file holds every version so that an upgrade is one diff, and so that the cache key of an
installed component (``<component>-<version>``) changes whenever its version does.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Pin:
    """One component's pin: what to install and at which version."""

    component: str
    version: str
    source: str  # a Go module, an npm package or a Debian package

    @property
    def cache_key(self) -> str:
        return f"{self.component}-{self.version}"


@cache
def pins() -> dict[str, Pin]:
    text = resources.files("mobileplane.stack").joinpath("versions.toml").read_text()
    data = tomllib.loads(text)
    out: dict[str, Pin] = {}
    for name, entry in data.items():
        version = entry.get("version") or entry["major"]
        source = entry.get("module") or entry.get("npm_package") or entry["debian_package"]
        out[name] = Pin(component=name, version=str(version), source=str(source))
    return out


def pin(component: str) -> Pin:
    return pins()[component]
