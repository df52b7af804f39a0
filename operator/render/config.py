"""The platform's configuration as environment variables, and which component reads which.

All non-secret settings live in one ConfigMap, ``<name>-config``, that every service takes
with ``envFrom``. Each key is declared with its *consumers* (the components that read it), so
that :func:`consumed_config` knows exactly what a component depends on and the config hash
(:mod:`.confighash`) rolls only the Deployments whose inputs changed: a new access-token TTL
restarts the auth service and nothing else. Keys every service reads (the cache)
are consumed by all.

Names follow the services' settings: ``REDIS_URL``/``REDIS_PREFIX`` and ``AWS_*`` are read by
the services kit as they are; a service's own settings carry its name as a prefix
(``AUTH_…``). Lists and objects are JSON, which pydantic-settings parses for complex fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mobileplane.operator.render.datastores import REDIS_PORT
from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import (
    PLATFORM_COMPONENT,
    base_name,
    child_name,
    gateway_url,
    metadata,
    service_host,
)
from mobileplane.operator.render.routes import ROUTES_KEY, enabled_services, service_scopes
from mobileplane.operator.spec import SERVICE_NAMES, CacheMode, MobilePlatformSpec

#: Where pods find files: Secrets under /var/run/secrets (the kubelet's convention), and the
#: gateway's routes under /etc. The ConfigMap points services at them.
SIGNING_KEYS_DIR = "/var/run/secrets/mobileplane/signing-keys"
APNS_KEY_DIR = "/var/run/secrets/mobileplane/apns"
APNS_KEY_FILE = f"{APNS_KEY_DIR}/key.p8"
FCM_CREDENTIALS_DIR = "/var/run/secrets/mobileplane/fcm"
FCM_CREDENTIALS_FILE = f"{FCM_CREDENTIALS_DIR}/service-account.json"
GATEWAY_ROUTES_DIR = "/etc/mobileplane/gateway"

#: Components other than services that read the ConfigMap.
BACKUP = "backup"

ALL_SERVICES = frozenset(SERVICE_NAMES)
#: Services that keep objects in the media bucket (and get its credentials).
MEDIA_SERVICES = ("content", "profiles", "telemetry")


@dataclass(frozen=True)
class ConfigEntry:
    """One key of the ConfigMap and the components whose pods read it."""

    key: str
    value: str
    consumers: frozenset[str]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def oidc_clients(spec: MobilePlatformSpec, scopes: list[str]) -> list[dict[str, Any]]:
    """One public OIDC client per app id (iOS bundle id, Android application id).

    Native apps cannot keep a secret (RFC 8252 §8.4): each client is public
    (``token_endpoint_auth_method: none``) and must use PKCE. An id that is both an iOS and an
    Android app is one client serving both platforms. Redirect URIs: a private-use scheme URI
    (``com.example.app:/cb``) belongs to the client whose id is that scheme, because only that
    app may claim it; claimed https and loopback URIs, and schemes that match no id, go to
    every client. Field names are RFC 7591's client metadata.
    """
    platforms: dict[str, set[str]] = {}
    for bundle_id in spec.app.ios.bundle_ids if spec.app.ios else []:
        platforms.setdefault(bundle_id, set()).add("ios")
    for package in spec.app.android.package_names if spec.app.android else []:
        platforms.setdefault(package, set()).add("android")
    by_lower = {client_id.lower(): client_id for client_id in platforms}
    redirects: dict[str, list[str]] = {client_id: [] for client_id in platforms}
    for uri in spec.app.redirect_uris:
        scheme = uri.split(":", 1)[0].lower()
        owner = by_lower.get(scheme) if scheme not in ("http", "https") else None
        for client_id in [owner] if owner else list(platforms):
            redirects[client_id].append(uri)
    return [
        {
            "client_id": client_id,
            "client_name": spec.app.display_name,
            "application_type": "native",
            "platforms": sorted(platforms[client_id]),
            "redirect_uris": redirects[client_id],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "require_pkce": True,
            "scope": " ".join(["openid", "offline_access", *scopes]),
        }
        for client_id in sorted(platforms)
    ]


def scope_grants(spec: MobilePlatformSpec) -> dict[str, str]:
    """``spec.auth.members`` as ``AUTH_SCOPE_GRANTS``: lower-cased email → its scopes (an email
    listed twice holds the union)."""
    grants: dict[str, set[str]] = {}
    for member in spec.auth.members:
        grants.setdefault(member.email.strip().lower(), set()).update(member.scopes)
    return {email: " ".join(sorted(scopes)) for email, scopes in sorted(grants.items())}


def _entries(inp: RenderInput) -> Iterator[ConfigEntry]:
    spec, platform = inp.spec, inp.platform

    def entry(key: str, value: str, *consumers: str) -> ConfigEntry:
        return ConfigEntry(key, value, frozenset(consumers) if consumers else ALL_SERVICES)

    # -- read by every service: the cache. Only keys some settings class reads belong here
    # (tests/unit/test_rendered_settings.py): a key read by none would still be in every
    # service's config hash and roll them all when it changes.
    if spec.cache.mode == CacheMode.IN_CLUSTER:
        redis = service_host(platform, "redis")
        yield entry("REDIS_URL", f"redis://{redis}:{REDIS_PORT}/0")
    # Namespaced keys: an External Redis may be shared by several platforms.
    yield entry("REDIS_PREFIX", f"mp:{platform.namespace}:{base_name(platform.name)}")

    # -- auth: the OpenID Provider
    ios, android = spec.app.ios, spec.app.android
    yield entry("AUTH_ISSUER", gateway_url(inp), "auth")
    yield entry("AUTH_DISPLAY_NAME", spec.app.display_name, "auth")
    grants = scope_grants(spec)
    held = sorted({scope for scopes in grants.values() for scope in scopes.split()})
    # The apps' clients may ask for the people's scopes too: only holders get them (auth's
    # AUTH_RESTRICTED_SCOPES), and `mobileplane login --client-id <app id>` needs a client.
    scopes = sorted({*service_scopes(inp), *held})
    yield entry("AUTH_CLIENTS", _json(oidc_clients(spec, scopes)), "auth")
    if grants:
        yield entry("AUTH_SCOPE_GRANTS", _json(grants), "auth")
    yield entry("AUTH_SIGNING_ALGORITHM", spec.auth.signing_algorithm, "auth")
    yield entry("AUTH_ACCESS_TOKEN_TTL_SECONDS", str(spec.auth.access_token_ttl_seconds), "auth")
    yield entry("AUTH_SIGNING_KEYS_DIR", SIGNING_KEYS_DIR, "auth")
    email = spec.auth.email
    yield entry("AUTH_EMAIL_SENDER", "smtp" if email else "log", "auth")
    if email:
        yield entry("AUTH_EMAIL_FROM", email.from_address, "auth")
        yield entry("AUTH_SMTP_HOST", email.smtp.host, "auth")
        yield entry("AUTH_SMTP_PORT", str(email.smtp.port), "auth")
        yield entry("AUTH_SMTP_SECURITY", email.smtp.security, "auth")
        yield entry("AUTH_REQUIRE_VERIFIED_EMAIL", _bool(email.require_verified), "auth")
    if ios and ios.team_id:
        # apple-app-site-association lists "<team id>.<bundle id>" for universal links.
        app_ids = [f"{ios.team_id}.{b}" for b in ios.bundle_ids]
        yield entry("AUTH_APPLE_APP_IDS", _json(app_ids), "auth")
    if android and android.sha256_cert_fingerprints:
        # assetlinks.json: which signing certificates may open https links in the apps.
        links = [
            {"package_name": p, "sha256_cert_fingerprints": android.sha256_cert_fingerprints}
            for p in android.package_names
        ]
        yield entry("AUTH_ANDROID_APP_LINKS", _json(links), "auth")

    # -- gateway
    yield entry("GATEWAY_ROUTES_FILE", f"{GATEWAY_ROUTES_DIR}/{ROUTES_KEY}", "gateway")

    # -- the media bucket: content media, avatars, crash-symbol files, each under its own
    # prefix (the backup job writes to the same S3 endpoint)
    if spec.media:
        yield entry("CONTENT_MEDIA_BUCKET", spec.media.bucket, "content")
        yield entry("PROFILES_AVATAR_BUCKET", spec.media.bucket, "profiles")
        yield entry("TELEMETRY_ARTIFACTS_BUCKET", spec.media.bucket, "telemetry")
        yield entry("AWS_REGION", spec.media.region, *MEDIA_SERVICES, BACKUP)
        if spec.media.endpoint:
            yield entry("AWS_ENDPOINT_URL", spec.media.endpoint, *MEDIA_SERVICES, BACKUP)

    # -- notifications
    if spec.push.apns:
        apns = spec.push.apns
        yield entry("NOTIFICATIONS_APNS_KEY_ID", apns.key_id, "notifications")
        yield entry("NOTIFICATIONS_APNS_TEAM_ID", apns.team_id, "notifications")
        yield entry("NOTIFICATIONS_APNS_TOPIC", apns.topic, "notifications")
        yield entry("NOTIFICATIONS_APNS_ENVIRONMENT", apns.environment, "notifications")
        yield entry("NOTIFICATIONS_APNS_KEY_FILE", APNS_KEY_FILE, "notifications")
    if spec.push.fcm:
        yield entry("NOTIFICATIONS_FCM_PROJECT_ID", spec.push.fcm.project_id, "notifications")
        yield entry("NOTIFICATIONS_FCM_CREDENTIALS_FILE", FCM_CREDENTIALS_FILE, "notifications")

    # -- telemetry: retention, and the stability targets crash-free rates are judged by
    t = spec.telemetry
    # The DSNs apps use: https://<key>@<public host>/telemetry/<project id>.
    yield entry("TELEMETRY_PUBLIC_URL", gateway_url(inp), "telemetry")
    yield entry("TELEMETRY_RETENTION_DAYS", str(t.retention_days), "telemetry")
    yield entry("TELEMETRY_TRACES_SAMPLE_RATE", str(t.traces_sample_rate), "telemetry")
    for prefix, target in (("SESSIONS", t.crash_free_sessions), ("USERS", t.crash_free_users)):
        yield entry(f"TELEMETRY_CRASH_FREE_{prefix}_TARGET", str(target.target), "telemetry")
        yield entry(f"TELEMETRY_CRASH_FREE_{prefix}_CRITICAL", str(target.critical), "telemetry")

    # -- analytics
    a = spec.analytics
    yield entry("ANALYTICS_RETENTION_DAYS", str(a.retention_days), "analytics")
    yield entry("ANALYTICS_IP_ANONYMIZATION", _bool(a.ip_anonymization), "analytics")

    # -- sync: the app's data model and limits
    if spec.sync.data_model is not None:
        yield entry("SYNC_SCHEMA", _json(spec.sync.data_model), "sync")
    yield entry("SYNC_MAX_ROWS_PER_USER", str(spec.sync.max_rows_per_user), "sync")
    yield entry("SYNC_OFFLINE_HORIZON_DAYS", str(spec.sync.offline_horizon_days), "sync")

    # -- backups (read by the backup CronJob)
    backups = spec.backups
    if backups.enabled:
        bucket = backups.bucket or (spec.media.bucket if spec.media else "")
        yield entry("BACKUP_BUCKET", bucket, BACKUP)
        yield entry("BACKUP_PREFIX", backups.prefix, BACKUP)


def config_entries(inp: RenderInput) -> list[ConfigEntry]:
    """Every key of ``<name>-config`` with its consumers, in a stable order: only keys some
    running component reads (a disabled service's keys are left out with it)."""
    running = {*enabled_services(inp), BACKUP}
    return [e for e in _entries(inp) if e.consumers & running]


def consumed_config(inp: RenderInput, component: str) -> dict[str, str]:
    """The keys (and values) of ``<name>-config`` that ``component``'s pods read."""
    return {e.key: e.value for e in config_entries(inp) if component in e.consumers}


def config_map(inp: RenderInput) -> dict[str, Any]:
    """ConfigMap ``<name>-config``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inp.platform, child_name(inp.platform, "config"), PLATFORM_COMPONENT),
        "data": {e.key: e.value for e in config_entries(inp)},
    }
