"""Typed settings, read from the environment once, lazily, and checked before use.

Each process loads its settings through a cached loader (:func:`get_settings`, or
:func:`load_settings` with a service's own subclass of :class:`KitSettings`) — never as a
module-level instance — so importing a module has no side effect and tests can build settings
explicitly. The environment variables mirror the Helm values one to one.

Secrets are :class:`pydantic.SecretStr` (never printed) wrapped in :data:`Secret`, which has no
default and refuses placeholder values such as ``changeme``: a deployment that forgot to set a
secret fails at start with the variable's name, not later with a confusing auth error.
Database URLs are normalised to the one driver the kit ships (``postgresql+psycopg://``).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values people leave in when they copy an example; compared case-insensitively after strip.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "replaceme",
        "replace-me",
        "secret",
        "password",
        "passwd",
        "xxx",
        "xxxx",
        "todo",
        "tbd",
        "fixme",
        "example",
        "dummy",
        "default",
        "none",
        "null",
        "placeholder",
        "your-secret-here",
    }
)

_DB_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg"}
_REDIS_SCHEMES = {"redis", "rediss", "unix"}


class SettingsError(Exception):
    """The environment does not hold a usable configuration; the message names each variable."""


def is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return (
        lowered in PLACEHOLDER_SECRETS
        or (lowered.startswith("<") and lowered.endswith(">"))
        or (lowered.startswith("${") and lowered.endswith("}"))
    )


def _refuse_placeholder(value: SecretStr) -> SecretStr:
    if is_placeholder(value.get_secret_value()):
        raise ValueError("is a placeholder value; set a real secret")
    return value


Secret = Annotated[SecretStr, AfterValidator(_refuse_placeholder)]
"""A required secret: no default, placeholder values refused."""


def normalize_database_url(url: str) -> str:
    """``postgres://``, ``postgresql://`` -> ``postgresql+psycopg://``; other schemes refused."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in _DB_SCHEMES:
        raise ValueError(
            "must be a PostgreSQL URL: postgresql://user:password@host:port/database "
            "(postgres:// and postgresql+psycopg:// are accepted too)"
        )
    _refuse_placeholder_password(url)
    return f"postgresql+psycopg://{rest}"


def validate_redis_url(url: str) -> str:
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme not in _REDIS_SCHEMES:
        raise ValueError("must be a Redis URL: redis://host:port/db, rediss://... or unix://...")
    _refuse_placeholder_password(url)
    return url.strip()


def _refuse_placeholder_password(url: str) -> None:
    try:
        password = urlsplit(url).password
    except ValueError as e:
        raise ValueError("is not a valid URL") from e
    if password is not None and password != "" and is_placeholder(password):
        raise ValueError("holds a placeholder password; set a real one")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and status pages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class KitSettings(BaseSettings):
    """What every service needs; a service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    service_name: str = Field(default="mobileplane", min_length=1, max_length=63)
    environment: Literal["development", "test", "staging", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    database_url: str
    redis_url: str
    # Key prefix for everything this deployment stores in Redis (see kit.redis.KeySpace).
    redis_prefix: str = Field(default="mp", min_length=1, pattern=r"^[A-Za-z0-9._:-]+$")
    otel_exporter_otlp_endpoint: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return validate_redis_url(value)


class S3Settings(BaseSettings):
    """Object storage, for the services that use it (loaded on its own: others need no keys)."""

    model_config = SettingsConfigDict(
        env_prefix="aws_", case_sensitive=False, extra="ignore", frozen=True
    )

    endpoint_url: str | None = None  # None: AWS itself; set it for any S3-compatible server
    access_key_id: str = Field(min_length=1)
    secret_access_key: Secret
    region: str = "us-east-1"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build ``cls`` from the environment (and ``overrides``) or raise :class:`SettingsError`.

    The error names each offending variable and never echoes a value (pydantic's own message
    would print the input, secrets included).
    """
    try:
        return cls(**overrides)
    except ValidationError as e:
        prefix = str(cls.model_config.get("env_prefix") or "")
        problems = [
            f"  {(prefix + '_'.join(str(p) for p in err['loc'])).upper()}: "
            f"{_describe(err['type'], err['msg'])}"
            for err in e.errors(include_input=False, include_url=False)
        ]
        raise SettingsError(
            f"invalid configuration for {cls.__name__}:\n" + "\n".join(problems)
        ) from None


def _describe(error_type: str, message: str) -> str:
    if error_type == "missing":
        return "required, not set"
    return message.removeprefix("Value error, ")


@functools.cache
def get_settings() -> KitSettings:
    """The process's kit settings, read on first call; ``get_settings.cache_clear()`` resets."""
    return load_settings(KitSettings)


@functools.cache
def get_s3_settings() -> S3Settings:
    return load_settings(S3Settings)
