"""``mobileplane login``: sign in to a platform the way a native app does, from a terminal.

It is the RFC 8252 loopback flow: listen on ``127.0.0.1`` on a free port, open the
authorization URL (authorization code + PKCE S256) in the browser, receive the redirect with
the code, check ``state`` and ``iss``, and redeem the code at the token endpoint. It prints
the tokens and a ``curl`` that uses the access token — the quickest way to try the login flow
against ``mobileplane up`` (whose demo client allows loopback redirects).
"""

from __future__ import annotations

import http.server
import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from mobileplane.services.auth.pkce import s256


def not_granted(asked: str, granted: str | None) -> list[str]:
    """Scopes asked for and not granted (a response without ``scope`` granted all, RFC 6749
    §5.1); the platform grants restricted ones only to accounts that hold them."""
    if granted is None:
        return []
    return [s for s in asked.split() if s not in granted.split()]


class LoginError(RuntimeError):
    """The sign-in did not complete; the message says why and what to try."""


@dataclass
class _Callback:
    query: dict[str, str] | None = None


def _handler(result: _Callback, done: threading.Event) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                self.send_error(404)
                return
            result.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = b"Signed in: you can close this tab and return to the terminal."
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            done.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def login(
    platform_url: str,
    client_id: str,
    scope: str,
    *,
    open_url: Callable[[str], object] = webbrowser.open,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run the loopback flow; ``open_url`` is given the authorization URL (a browser by
    default). Returns the token response."""
    base = platform_url.rstrip("/")
    try:
        meta = httpx.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    except (httpx.HTTPError, ValueError) as e:
        raise LoginError(
            f"cannot read {base}/.well-known/openid-configuration: {e}; is the platform up "
            "(mobileplane up) and is the URL right?"
        ) from None
    result, done = _Callback(), threading.Event()
    server = http.server.HTTPServer(("127.0.0.1", 0), _handler(result, done))
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url = (
        meta["authorization_endpoint"]
        + "?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": scope,
                "state": state,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            }
        )
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        open_url(url)
        if not done.wait(timeout):
            raise LoginError(f"no sign-in within {timeout:.0f} s; run the command again")
    finally:
        server.shutdown()
        server.server_close()
    query = result.query or {}
    if "error" in query:
        raise LoginError(
            f"the provider refused: {query['error']}: {query.get('error_description', '')}"
        )
    if query.get("state") != state:
        raise LoginError("the answer's state does not match this sign-in (a stale browser tab?)")
    if query.get("iss", meta["issuer"]) != meta["issuer"]:
        raise LoginError("the answer came from another issuer (RFC 9207 mix-up protection)")
    token = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query.get("code", ""),
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
        timeout=20,
    )
    if token.status_code != 200:
        raise LoginError(f"the token endpoint refused the code: {token.text}")
    body: dict[str, Any] = token.json()
    return body
