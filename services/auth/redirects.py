"""Which redirect URIs a native app may use, and whether a requested one is registered.

RFC 8252 (OAuth 2.0 for Native Apps) allows three kinds of redirect URI:

- **private-use URI schemes** (§7.1) in reverse-DNS form of a domain the app controls,
  ``com.example.app:/oauth2redirect`` — matched exactly;
- **claimed https URIs** (§7.2, universal links / app links) — matched exactly;
- **loopback interfaces** (§7.3), ``http://127.0.0.1:{port}/path`` or ``http://[::1]:{port}/…``
  — the port is chosen by the app at run time, so "the authorization server MUST allow any
  port to be specified"; everything else (scheme, host, path, query) must match. ``localhost``
  is NOT RECOMMENDED (§8.3) because it can resolve elsewhere: accepted as registered, it is
  matched exactly, port included.

Anything else (http to a non-loopback host, a fragment, a scheme that is not reverse DNS) is
refused at registration. Matching is byte-exact apart from the loopback port; no prefix,
wildcard or case folding, because a lax match is how open redirects and code theft happen.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

#: A private-use scheme must contain a period (RFC 8252 §7.1: reverse DNS of a domain).
_PRIVATE_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$", re.IGNORECASE)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})


class RedirectUriError(ValueError):
    """A redirect URI that a native app may not register."""


def _split(uri: str) -> SplitResult:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise RedirectUriError(f"{uri!r} is not a URI: {e}") from None
    return parts


def kind(uri: str) -> str:
    """``"loopback"``, ``"https"`` or ``"private-use"``; raises :class:`RedirectUriError`."""
    parts = _split(uri)
    if parts.fragment or "#" in uri:
        raise RedirectUriError(
            f"{uri!r}: a redirect URI must not have a fragment (RFC 6749 §3.1.2)"
        )
    scheme = parts.scheme.lower()
    if scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS or parts.hostname == "localhost":
            return "loopback"
        raise RedirectUriError(
            f"{uri!r}: http is allowed only for loopback redirects (127.0.0.1 or [::1]); "
            "use https or a private-use scheme"
        )
    if scheme == "https":
        if not parts.hostname:
            raise RedirectUriError(f"{uri!r}: an https redirect URI needs a host")
        return "https"
    if _PRIVATE_SCHEME.match(scheme):
        return "private-use"
    raise RedirectUriError(
        f"{uri!r}: a private-use scheme must be reverse DNS of a domain you control, "
        "like com.example.app:/callback (RFC 8252 §7.1)"
    )


def _loopback_match(registered: SplitResult, requested: SplitResult) -> bool:
    if registered.hostname not in LOOPBACK_HOSTS:
        return False  # "localhost" is matched exactly, port included
    return (
        requested.scheme == registered.scheme
        and requested.hostname == registered.hostname
        and requested.path == registered.path
        and requested.query == registered.query
        and not requested.fragment
        and requested.username is None
        and requested.password is None
    )


def matches(registered: str, requested: str) -> bool:
    """Whether ``requested`` is ``registered`` (exactly, or with another loopback port)."""
    if registered == requested:
        return True
    try:
        reg, req = _split(registered), _split(requested)
    except RedirectUriError:
        return False
    return reg.scheme == "http" and _loopback_match(reg, req)


def find(registered: list[str] | tuple[str, ...], requested: str) -> str | None:
    """The registered URI that ``requested`` matches, or ``None``."""
    return next((uri for uri in registered if matches(uri, requested)), None)
