"""The auth service's tables (SQLAlchemy Core).

- ``auth_users`` — accounts: email (unique case-insensitively), argon2id hash (none for users
  who only sign in through an upstream provider), verification, failed-login counter and lock.
- ``auth_identities`` — links to upstream OpenID providers (issuer + subject → user).
- ``auth_sessions`` — one per signed-in device (the tokens' ``sid``): created and last-used
  times for the idle and absolute lifetimes, revocation with its reason.
- ``auth_codes`` — authorization codes (hashed), single-use, bound to the client, redirect URI
  and PKCE challenge.
- ``auth_refresh_tokens`` — refresh tokens (hashed). A session's tokens form one family, a
  chain of parent → child; ``consumed_at`` is set by an atomic conditional update, so a token
  is redeemed once.
- ``auth_email_tokens`` — email verification and password-reset links (hashed), by purpose.
- ``auth_audit`` — what happened: logins, failures, lockouts, refresh reuse, revocations.

Every token is stored only as its SHA-256: a database leak yields no usable token.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()


users = Table(
    "auth_users",
    metadata,
    Column("id", Text, primary_key=True),
    Column("email", Text, nullable=False),
    Column("email_verified", Boolean, nullable=False, server_default=text("false")),
    Column("password_hash", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Index("auth_users_email", func.lower(text("email")), unique=True),
)

identities = Table(
    "auth_identities",
    metadata,
    Column("issuer", Text, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("email", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("auth_identities_user", "user_id"),
)

sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", Text, nullable=False),
    Column("device_id", Text),
    Column("device_name", Text),
    Column("user_agent", Text),
    Column("ip", Text),
    Column("amr", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", Text),
    Index("auth_sessions_user", "user_id"),
)

codes = Table(
    "auth_codes",
    metadata,
    Column("code_hash", Text, primary_key=True),
    Column("client_id", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text),
    Column("user_id", Text, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", Text, ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("auth_time", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("parent_hash", Text),
    Column("client_id", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("consumed_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("auth_refresh_tokens_session", "session_id"),
    Index("auth_refresh_tokens_parent", "parent_hash"),
)

email_tokens = Table(
    "auth_email_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("email", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("purpose", Text, nullable=False, server_default=text("'verify'")),
)

audit = Table(
    "auth_audit",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("type", Text, nullable=False),
    Column("user_id", Text),
    Column("client_id", Text),
    Column("session_id", Text),
    Column("ip", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("auth_audit_user", "user_id", "at"),
)
