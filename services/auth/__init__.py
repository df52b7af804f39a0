"""The auth service: the platform's OpenID Provider (login, tokens, sessions, keys)."""
