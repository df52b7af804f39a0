"""Proof Key for Code Exchange (RFC 7636), S256 only.

Native apps are public clients: anyone who intercepts the authorization code (another app
registering the same URI scheme) could redeem it. PKCE binds the code to a secret the app
made: the authorization request carries ``code_challenge = BASE64URL(SHA256(verifier))`` and
the token request must present the verifier. ``plain`` is refused (it protects nothing once
the request is observed); OAuth 2.1 and RFC 9700 require S256 where it can be used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

#: RFC 7636 §4.1: 43–128 characters of ``[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"``.
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
#: A S256 challenge is an unpadded base64url SHA-256: 43 characters.
CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
METHODS = ("S256",)


def challenge_problem(challenge: str | None, method: str | None) -> str | None:
    """Why an authorization request's PKCE parameters are unacceptable, or ``None``."""
    if not challenge:
        return "code_challenge is required: public clients must use PKCE (RFC 7636, RFC 8252)"
    if (method or "plain") not in METHODS:
        return "code_challenge_method must be S256 (plain is not accepted)"
    if not CHALLENGE.match(challenge):
        return "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
    return None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str | None, challenge: str) -> bool:
    """Whether ``verifier`` is the secret behind ``challenge`` (constant-time compare)."""
    if not verifier or not VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
