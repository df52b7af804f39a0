"""A platform's sign-in kept by ``mobileplane login``, and fresh access tokens from it.

Access tokens last 15 minutes; ``mobileplane login`` keeps the refresh token that comes with
them so no one signs in again every quarter of an hour (issue 21 §4). One file per platform
URL under the user's state directory (``$XDG_STATE_HOME/mobileplane/credentials/``, else
``~/.local/state/...``), mode 0600 in a 0700 folder.

:func:`access_token` is what every command that calls the platform uses::

    from mobileplane.credentials import CredentialsError, access_token

    token = access_token(url)  # CredentialsError: its message says to run mobileplane login

It returns the stored access token while it has :data:`MIN_VALIDITY_SECONDS` left, else
redeems the refresh token (``grant_type=refresh_token``) and stores the rotated one back. The
platform's refresh tokens are single-use with reuse detection: two processes redeeming the
same one would end the session, so the read-refresh-write runs under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

#: The quick start's address, which ``login`` and ``token`` use unless given ``--url``.
DEFAULT_PLATFORM_URL = "http://127.0.0.1:8080"
#: A token handed out lasts at least this long: enough for a command or a few curls, and
#: a third of the platform's 15-minute lifetime, so at most three refreshes an hour.
MIN_VALIDITY_SECONDS = 300.0


class CredentialsError(RuntimeError):
    """No usable sign-in for a platform; the message says what to run."""


@dataclass(frozen=True)
class StoredLogin:
    """What is kept of a sign-in."""

    platform_url: str
    client_id: str
    scope: str
    refresh_token: str
    access_token: str
    expires_at: float  # seconds since the epoch


def normalize_url(platform_url: str) -> str:
    return platform_url.rstrip("/")


def login_command(platform_url: str) -> str:
    """The command that signs in to ``platform_url`` again."""
    url = normalize_url(platform_url)
    return "mobileplane login" + ("" if url == DEFAULT_PLATFORM_URL else f" --url {url}")


def credentials_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "state")
    return Path(base).expanduser() / "mobileplane" / "credentials"


def credentials_file(platform_url: str, environ: Mapping[str, str] | None = None) -> Path:
    """``<host>-<port>-<8 hex of the URL>.json``: one file per platform."""
    url = normalize_url(platform_url)
    parts = urlsplit(url)
    readable = f"{parts.hostname or 'platform'}-{parts.port or parts.scheme}"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return credentials_dir(environ) / f"{readable}-{digest}.json"


def save(
    platform_url: str,
    client_id: str,
    scope: str,
    token: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Keep the sign-in of token response ``token``; returns the file. A response without a
    refresh token (no ``offline_access`` scope) is a :class:`CredentialsError`."""
    if not token.get("refresh_token"):
        raise CredentialsError(
            "the platform issued no refresh token (is offline_access in --scope?): "
            "nothing kept; the access token above lasts until it expires"
        )
    path = credentials_file(platform_url, environ)
    stored = StoredLogin(
        platform_url=normalize_url(platform_url),
        client_id=client_id,
        scope=str(token.get("scope") or scope),
        refresh_token=str(token["refresh_token"]),
        access_token=str(token["access_token"]),
        expires_at=clock() + float(token.get("expires_in", 0)),
    )
    with _locked(path):
        _write(path, stored)
    return path


def load(platform_url: str, environ: Mapping[str, str] | None = None) -> StoredLogin:
    path = credentials_file(platform_url, environ)
    try:
        data = json.loads(path.read_text())
        return StoredLogin(**data)
    except FileNotFoundError:
        raise CredentialsError(
            f"not signed in to {normalize_url(platform_url)}: run `{login_command(platform_url)}`"
        ) from None
    except (ValueError, TypeError) as e:
        raise CredentialsError(
            f"{path} is not a stored sign-in ({e}): run `{login_command(platform_url)}`"
        ) from None


def access_token(
    platform_url: str = DEFAULT_PLATFORM_URL,
    *,
    min_validity: float = MIN_VALIDITY_SECONDS,
    clock: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> str:
    """An access token for ``platform_url`` valid for at least ``min_validity`` seconds,
    refreshed (and the rotated refresh token stored) when needed."""
    path = credentials_file(platform_url, environ)
    with _locked(path):
        stored = load(platform_url, environ)
        if stored.expires_at - clock() >= min_validity:
            return stored.access_token
        token = _refresh(stored, timeout=timeout, forget=path)
        fresh = StoredLogin(
            platform_url=stored.platform_url,
            client_id=stored.client_id,
            scope=str(token.get("scope") or stored.scope),
            # Rotation: the platform answers with a new one; the old one is spent.
            refresh_token=str(token.get("refresh_token") or stored.refresh_token),
            access_token=str(token["access_token"]),
            expires_at=clock() + float(token.get("expires_in", 0)),
        )
        _write(path, fresh)
        return fresh.access_token


def _refresh(stored: StoredLogin, *, timeout: float, forget: Path) -> dict[str, Any]:
    base = stored.platform_url
    again = login_command(base)
    try:
        meta = httpx.get(f"{base}/.well-known/openid-configuration", timeout=timeout).json()
        answer = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": stored.refresh_token,
                "client_id": stored.client_id,
            },
            timeout=timeout,
        )
    except (httpx.HTTPError, ValueError, KeyError) as e:
        raise CredentialsError(
            f"cannot refresh the sign-in to {base}: {e}; is the platform up (mobileplane up)?"
        ) from None
    body: dict[str, Any]
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code == 200 and body.get("access_token"):
        return body
    if body.get("error") == "invalid_grant":
        # Expired, revoked or already used: it will never work again.
        forget.unlink(missing_ok=True)
        raise CredentialsError(
            f"the sign-in to {base} has expired or was revoked "
            f"({body.get('error_description', 'invalid_grant')}): run `{again}`"
        )
    raise CredentialsError(
        f"the platform refused to refresh the sign-in ({answer.status_code}: {answer.text[:200]})"
        f"; if it persists, run `{again}`"
    )


def _write(path: Path, stored: StoredLogin) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_suffix(".new")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(stored), handle, indent=2)
    staged.replace(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One reader-refresher-writer of ``path`` at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
