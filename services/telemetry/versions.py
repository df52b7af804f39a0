"""Release names and their order (pure), for regression detection.

Sentry SDKs name releases ``<package>@<version>+<build>`` (``com.example.app@1.2.0+45``);
``<version>`` is usually semantic (``1.2.0``, ``1.3.0-beta.2``). Two releases are ordered when
they share the package and both versions parse: numeric parts compare as numbers, a
pre-release sorts before its release, and the build number breaks ties. Anything else is
incomparable (``None``) — then "newer" cannot be decided from names, and the caller falls back
to time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"v?(?P<nums>\d+(?:\.\d+){0,3})(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?"
)


@dataclass(frozen=True)
class Release:
    package: str
    numbers: tuple[int, ...]
    pre: tuple[tuple[int, int | str], ...] | None
    build: tuple[tuple[int, int | str], ...] | None

    def key(self) -> tuple[object, ...]:
        numbers = self.numbers + (0,) * (4 - len(self.numbers))
        # A release without a pre-release sorts after every pre-release of it.
        pre: tuple[object, ...] = (1,) if self.pre is None else (0, self.pre)
        build: tuple[object, ...] = () if self.build is None else self.build
        return (numbers, pre, build)


def _idents(text: str) -> tuple[tuple[int, int | str], ...]:
    # Numeric identifiers sort before alphanumeric ones (semver 11.4.3).
    return tuple((0, int(p)) if p.isascii() and p.isdigit() else (1, p) for p in text.split("."))


def parse_release(name: str) -> Release | None:
    package, sep, version = name.rpartition("@")
    if not sep:
        package, version = "", name
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return None
    return Release(
        package=package,
        numbers=tuple(int(n) for n in match["nums"].split(".")),
        pre=_idents(match["pre"]) if match["pre"] else None,
        build=_idents(match["build"]) if match["build"] else None,
    )


def compare(a: str, b: str) -> int | None:
    """-1, 0 or 1 as release ``a`` is older than, the same as or newer than ``b``; ``None``
    when they cannot be ordered."""
    if a == b:
        return 0
    ra, rb = parse_release(a), parse_release(b)
    if ra is None or rb is None or ra.package != rb.package:
        return None
    ka, kb = ra.key(), rb.key()
    if ka == kb:
        return 0
    return -1 if ka < kb else 1


def is_regression(
    event_release: str | None, resolved_in: str | None, *, seen_after_resolution: bool
) -> bool:
    """Whether an event reopens a resolved issue.

    Resolved "in release R": only an event from a release newer than R regresses it (a late
    crash report from an older build is the old bug, already fixed). Resolved without a release,
    or with releases that cannot be ordered: any event after the resolution regresses it.
    """
    if not seen_after_resolution:
        return False
    if resolved_in is None or event_release is None:
        return True
    order = compare(event_release, resolved_in)
    if order is None:
        return True
    return order > 0
