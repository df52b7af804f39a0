"""The MobilePlatform spec as typed models: what the operator reads, and what the CRD says.

These models are the single source of the CRD's schema: ``crdgen`` turns them into the
structural OpenAPI schema in ``crds/mobileplatform.yaml`` (descriptions, defaults, bounds and
CEL rules included), and a test keeps the two in step. The operator parses every object it
reconciles through :class:`MobilePlatformSpec`, so what the API server accepted and what the
operator understands cannot drift apart.

Field names are camelCase, as Kubernetes API conventions want; Python attributes are
snake_case through aliases.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from mobileplane.services.sync.schema import SchemaError, parse_schema

#: Every service the platform can run, in the order the gateway's route table lists them.
SERVICE_NAMES = (
    "gateway",
    "auth",
    "profiles",
    "content",
    "sync",
    "notifications",
    "telemetry",
    "analytics",
    "appconfig",
)

#: Services of the design that this version does not ship (no ``mobileplane serve`` command):
#: the CRD keeps their place in the spec but refuses to enable them.
UNSHIPPED_SERVICES = ("notifications",)

BUNDLE_ID = r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
ANDROID_PACKAGE = r"^[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)+$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
CRON = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"

#: RFC 8252 redirect URIs for native apps, as CEL regular expressions (RE2):
#: a claimed "https" URI (§7.2), a private-use scheme in reverse-DNS form (§7.1), or the
#: loopback interface by IP literal on any port (§7.3; "localhost" is NOT RECOMMENDED, §8.3).
REDIRECT_HTTPS = r"^https://[^/?#]+(/[^#]*)?$"
REDIRECT_PRIVATE_SCHEME = r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:/[^#]*$"
REDIRECT_LOOPBACK = r"^http://(127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?(/[^#]*)?$"


def cel(
    rule: str,
    message: str,
    *,
    reason: str | None = None,
    field_path: str | None = None,
    optional_old_self: bool = False,
) -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if reason:
        out["reason"] = reason
    if field_path:
        out["fieldPath"] = field_path
    if optional_old_self:
        out["optionalOldSelf"] = True
    return out


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


# -- app identity ---------------------------------------------------------------------------


class IOSApp(Model):
    """The iOS app(s) of this platform."""

    bundle_ids: list[str] = Field(
        min_length=1,
        max_length=20,
        json_schema_extra={"items": {"type": "string", "pattern": BUNDLE_ID, "maxLength": 155}},
        description="Bundle identifiers of the iOS apps (e.g. com.example.app), used as OIDC "
        "client ids and to bind Sign in with Apple and APNs topics.",
    )
    team_id: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9]{10}$",
        description="Apple Developer Team ID (10 characters), for universal links.",
    )


class AndroidApp(Model):
    """The Android app(s) of this platform."""

    package_names: list[str] = Field(
        min_length=1,
        max_length=20,
        json_schema_extra={
            "items": {"type": "string", "pattern": ANDROID_PACKAGE, "maxLength": 150}
        },
        description="Application ids of the Android apps (e.g. com.example.app), used as OIDC "
        "client ids and FCM targets.",
    )
    sha256_cert_fingerprints: list[str] = Field(
        default_factory=list,
        max_length=10,
        json_schema_extra={
            "items": {"type": "string", "pattern": r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$"}
        },
        description="SHA-256 fingerprints of the signing certificates, for App Links "
        "(assetlinks.json).",
    )


class AppIdentity(Model):
    """Who the platform serves: the app's name, its store identities and OIDC redirects."""

    display_name: str = Field(
        min_length=1,
        max_length=63,
        description="Human-readable name of the app, shown on login pages.",
    )
    ios: IOSApp | None = Field(default=None, description="The iOS app identity.")
    android: AndroidApp | None = Field(default=None, description="The Android app identity.")
    redirect_uris: list[str] = Field(
        default_factory=list,
        max_length=20,
        alias="redirectURIs",
        json_schema_extra={
            "items": {"type": "string", "maxLength": 2048},
            **validations(
                cel(
                    "self.all(u, u.matches(r'"
                    + REDIRECT_HTTPS
                    + "') || u.matches(r'"
                    + REDIRECT_PRIVATE_SCHEME
                    + "') || u.matches(r'"
                    + REDIRECT_LOOPBACK
                    + "'))",
                    "each redirect URI must follow RFC 8252: a claimed https URI, a private-use "
                    "scheme in reverse-DNS form (com.example.app:/callback), or a loopback IP "
                    "literal (http://127.0.0.1/callback, any port); not 'localhost'",
                )
            ),
        },
        description="OAuth 2.0 redirect URIs of the native apps (RFC 8252).",
    )


# -- services -------------------------------------------------------------------------------


class ResourceList(Model):
    """Amounts of CPU and memory, as Kubernetes quantities."""

    cpu: str | None = Field(default=None, pattern=QUANTITY, description="CPU, e.g. 100m or 1.")
    memory: str | None = Field(
        default=None, pattern=QUANTITY, description="Memory, e.g. 128Mi or 1Gi."
    )


class Resources(Model):
    """Compute resources of each pod of a service."""

    requests: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="50m", memory="128Mi"),
        description="What the scheduler reserves for each pod.",
    )
    limits: ResourceList = Field(
        default_factory=lambda: ResourceList(memory="512Mi"),
        description="The most each pod may use (memory over the limit is killed).",
    )


class Autoscaling(Model):
    """A HorizontalPodAutoscaler for the service; when enabled it owns the replica count."""

    enabled: bool = Field(default=False, description="Whether to scale on CPU utilisation.")
    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest replicas.")
    max_replicas: int = Field(default=3, ge=1, le=100, description="Most replicas.")
    target_cpu_utilization_percentage: int = Field(
        default=75,
        ge=10,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU utilisation to aim for.",
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.maxReplicas >= self.minReplicas",
                "autoscaling.maxReplicas must be at least minReplicas",
            ),
        )
    )


class ServiceSpec(Model):
    """One service of the platform."""

    enabled: bool = Field(default=True, description="Whether the service runs.")
    replicas: int = Field(default=1, ge=0, le=100, description="Replicas when autoscaling is off.")
    image: str | None = Field(
        default=None,
        max_length=512,
        description="Container image of this service; defaults to spec.image.",
    )
    resources: Resources = Field(
        default_factory=Resources, description="Requests and limits of each pod."
    )
    autoscaling: Autoscaling = Field(
        default_factory=Autoscaling, description="Horizontal autoscaling."
    )


class UnshippedServiceSpec(ServiceSpec):
    """A service of the platform's design that this version of mobileplane does not ship:
    it stays off (the API server refuses ``enabled: true``), so no pod runs a command that
    does not exist."""

    enabled: bool = Field(
        default=False,
        description="Must stay false: this version of mobileplane does not ship the service.",
    )


def _service(description: str, model: type[ServiceSpec] = ServiceSpec) -> Any:
    return Field(default_factory=model, description=description)


class Services(Model):
    """Which services run, and how many of each."""

    gateway: ServiceSpec = _service("The API gateway: one entry point, JWT checks, rate limits.")
    auth: ServiceSpec = _service("The OpenID Provider: login, tokens, sessions.")
    profiles: ServiceSpec = _service("User profiles and settings.")
    content: ServiceSpec = _service("Content delivery, personalisation and media.")
    sync: ServiceSpec = _service("Offline sync of the app's data.")
    notifications: UnshippedServiceSpec = _service(
        "Push notifications through APNs and FCM (not shipped yet: stays disabled).",
        UnshippedServiceSpec,
    )
    telemetry: ServiceSpec = _service("Crash and performance telemetry (Sentry protocol).")
    analytics: ServiceSpec = _service("Product analytics (the Segment HTTP Tracking API).")
    appconfig: ServiceSpec = _service(
        "App config that installed apps read: latest and minimum versions, halted versions, "
        "kill switches (the release controller writes it)."
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.gateway.enabled",
                "the gateway cannot be disabled: apps reach every service through it",
                field_path=".gateway.enabled",
            ),
            *(
                cel(
                    f"!self.{name}.enabled",
                    f"this version of mobileplane does not ship the {name} service yet: "
                    f"leave services.{name}.enabled false",
                    field_path=f".{name}.enabled",
                )
                for name in UNSHIPPED_SERVICES
            ),
        )
    )

    def by_name(self) -> dict[str, ServiceSpec]:
        return {name: getattr(self, name) for name in SERVICE_NAMES}


class Image(Model):
    """The default container image of the services."""

    repository: str = Field(
        default="ghcr.io/mobileplane/mobileplane",
        max_length=255,
        description="Image repository of the services.",
    )
    tag: str = Field(default="0.1.0", max_length=128, description="Image tag.")
    pull_policy: str = Field(
        default="IfNotPresent",
        description="Kubernetes imagePullPolicy.",
        json_schema_extra={"enum": ["Always", "IfNotPresent", "Never"]},
    )


class Toleration(Model):
    """A pod toleration (as in core/v1): lets the platform's pods onto tainted nodes."""

    key: str | None = Field(
        default=None, max_length=316, description="Taint key; empty with Exists matches all."
    )
    operator: str = Field(
        default="Equal",
        description="Equal (key and value match) or Exists (the key is enough).",
        json_schema_extra={"enum": ["Equal", "Exists"]},
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value to match.")
    effect: str | None = Field(
        default=None,
        description="Taint effect to match; empty matches all effects.",
        json_schema_extra={"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="With NoExecute: how long the pod stays once tainted."
    )


class Scheduling(Model):
    """Where the platform's pods may run: every service, datastore and job pod gets these."""

    node_selector: dict[str, Annotated[str, Field(max_length=63, description="Label value.")]] = (
        Field(
            default_factory=dict,
            max_length=32,
            description="Node labels a pod's node must carry (core/v1 nodeSelector).",
        )
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=32,
        description="Taints the pods tolerate, e.g. dedicated nodes for the platform.",
    )
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="PriorityClass of the pods (must exist in the cluster).",
    )

    def pod_fields(self) -> dict[str, Any]:
        """The pod spec fields these settings set (none when left at their defaults)."""
        out: dict[str, Any] = {}
        if self.node_selector:
            out["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            out["tolerations"] = [
                t.model_dump(by_alias=True, exclude_none=True) for t in self.tolerations
            ]
        if self.priority_class_name:
            out["priorityClassName"] = self.priority_class_name
        return out


# -- data -----------------------------------------------------------------------------------


class SecretRef(Model):
    """A Secret in the MobilePlatform's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")


class SecretKeyRef(Model):
    """One key of a Secret in the MobilePlatform's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret.")


class DatabaseMode(StrEnum):
    EXTERNAL = "External"
    IN_CLUSTER = "InCluster"


class ExternalDatabase(Model):
    """An existing PostgreSQL server, in which the operator creates the app's database."""

    admin_secret_ref: SecretRef = Field(
        description="Secret with keys host, port, username and password (optional: sslmode, "
        "database) of a role that may create databases and roles.",
    )


class InClusterDatabase(Model):
    """A PostgreSQL StatefulSet in the namespace: for development, not production."""

    image: str = Field(default="postgres:15", max_length=255, description="PostgreSQL image.")
    storage: str = Field(default="1Gi", pattern=QUANTITY, description="Volume size.")


class Database(Model):
    """The app's PostgreSQL database and its least-privileged role."""

    mode: DatabaseMode = Field(
        default=DatabaseMode.IN_CLUSTER, description="External (an existing server) or InCluster."
    )
    name: str | None = Field(
        default=None,
        pattern=PG_IDENTIFIER,
        description="Name of the database (and of its role); defaults to "
        "mp_<namespace>_<name> with dashes as underscores. Immutable once set.",
    )
    external: ExternalDatabase | None = Field(
        default=None, description="Settings of mode External."
    )
    in_cluster: InClusterDatabase = Field(
        default_factory=InClusterDatabase, description="Settings of mode InCluster."
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="What happens to the database and role when the MobilePlatform is "
        "deleted: Retain keeps them, Delete drops them.",
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.mode != 'External' || has(self.external)",
                "database.external is required when database.mode is External",
                field_path=".external",
            ),
            cel(
                "!has(oldSelf.name) || (has(self.name) && self.name == oldSelf.name)",
                "database.name is immutable",
                field_path=".name",
            ),
            cel("self.mode == oldSelf.mode", "database.mode is immutable", field_path=".mode"),
        )
    )


class CacheMode(StrEnum):
    EXTERNAL = "External"
    IN_CLUSTER = "InCluster"


class Cache(Model):
    """The Redis cache of the services."""

    mode: CacheMode = Field(
        default=CacheMode.IN_CLUSTER, description="InCluster (a Redis Deployment) or External."
    )
    url_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="For mode External: the Secret key holding a redis:// or rediss:// URL.",
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.mode != 'External' || has(self.urlSecretRef)",
                "cache.urlSecretRef is required when cache.mode is External",
                field_path=".urlSecretRef",
            ),
        )
    )


class LifecycleRule(Model):
    """One S3 lifecycle rule of the media bucket."""

    id: str = Field(min_length=1, max_length=255, description="Rule id, unique in the bucket.")
    prefix: str = Field(default="", max_length=1024, description="Key prefix it applies to.")
    expiration_days: int | None = Field(
        default=None, ge=1, le=36500, description="Delete objects this many days old."
    )
    abort_incomplete_multipart_upload_days: int | None = Field(
        default=None, ge=1, le=365, description="Abort unfinished multipart uploads after days."
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.expirationDays) || has(self.abortIncompleteMultipartUploadDays)",
                "a lifecycle rule needs expirationDays or abortIncompleteMultipartUploadDays",
            ),
        )
    )


class Media(Model):
    """The S3 bucket of the app's media (uploads, content assets)."""

    bucket: str = Field(
        pattern=BUCKET_NAME, description="Bucket name (S3 naming rules). Immutable."
    )
    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="S3 endpoint URL; AWS when omitted.",
    )
    region: str = Field(default="us-east-1", max_length=64, description="S3 region.")
    credentials_secret_ref: SecretRef = Field(
        description="Secret with keys accessKeyId and secretAccessKey.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain keeps the bucket when the MobilePlatform is deleted; Delete "
        "empties and removes it.",
    )
    lifecycle: list[LifecycleRule] = Field(
        default_factory=list, max_length=50, description="Lifecycle rules of the bucket."
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.bucket == oldSelf.bucket", "media.bucket is immutable", field_path=".bucket"),
        )
    )


# -- push, telemetry, analytics, backups, auth ----------------------------------------------


class APNs(Model):
    """Apple Push Notification service credentials (token-based, .p8 key)."""

    key_secret_ref: SecretKeyRef = Field(description="Secret key holding the .p8 private key.")
    key_id: str = Field(pattern=r"^[A-Z0-9]{10}$", description="Key ID of the .p8 key.")
    team_id: str = Field(pattern=r"^[A-Z0-9]{10}$", description="Apple Developer Team ID.")
    topic: str = Field(pattern=BUNDLE_ID, description="The app's bundle id (apns-topic).")
    environment: str = Field(
        default="production",
        description="production or sandbox.",
        json_schema_extra={"enum": ["production", "sandbox"]},
    )


class FCM(Model):
    """Firebase Cloud Messaging (HTTP v1) credentials."""

    service_account_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the Google service account JSON."
    )
    project_id: str = Field(
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="Firebase project id."
    )


class Push(Model):
    """Push credentials of the notifications service."""

    apns: APNs | None = Field(default=None, description="APNs, for iOS.")
    fcm: FCM | None = Field(default=None, description="FCM, for Android (and iOS via FCM).")


class StabilityTarget(Model):
    """A crash-free rate target, in percent."""

    target: float = Field(default=99.5, ge=0, le=100, description="Healthy at or above this.")
    critical: float = Field(
        default=99.0, ge=0, le=100, description="Critical below this (releases halt)."
    )

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.critical <= self.target", "critical must not exceed target"),
        )
    )


class Telemetry(Model):
    """Crash and performance telemetry."""

    retention_days: int = Field(default=90, ge=1, le=3650, description="Days events are kept.")
    crash_free_sessions: StabilityTarget = Field(
        default_factory=StabilityTarget, description="Target for crash-free sessions."
    )
    crash_free_users: StabilityTarget = Field(
        default_factory=lambda: StabilityTarget(target=99.0, critical=98.0),
        description="Target for crash-free users.",
    )
    traces_sample_rate: float = Field(
        default=0.1, ge=0, le=1, description="Share of transactions kept."
    )


class Analytics(Model):
    """Product analytics."""

    retention_days: int = Field(default=395, ge=1, le=3650, description="Days raw events are kept.")
    ip_anonymization: bool = Field(default=True, description="Drop the last octet of client IPs.")


class Sync(Model):
    """Offline sync: the app's synced data model and its limits."""

    data_model: dict[str, Any] | None = Field(
        default=None,
        description="The synced data model: schema version, the oldest app version served, "
        "and tables with typed columns, conflict resolvers and buckets (see "
        "docs/sync-protocol.md, Configuration). Unset: a small demo notes model.",
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    max_rows_per_user: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Live rows a user may hold."
    )
    offline_horizon_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="How long deletions are kept for devices that are offline; a device "
        "offline for longer resyncs its data.",
    )

    @field_validator("data_model")
    @classmethod
    def _valid_data_model(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                parse_schema(value)
            except SchemaError as e:
                raise ValueError(f"invalid sync data model: {e}") from None
        return value


class Backups(Model):
    """Scheduled logical backups of the database (pg_dump) to S3."""

    enabled: bool = Field(default=False, description="Whether backups run.")
    schedule: str = Field(default="0 3 * * *", pattern=CRON, description="Cron schedule (UTC).")
    retention_days: int = Field(default=14, ge=1, le=3650, description="Days backups are kept.")
    bucket: str | None = Field(
        default=None,
        pattern=BUCKET_NAME,
        description="Target bucket; defaults to the media bucket.",
    )
    prefix: str = Field(default="backups/", max_length=512, description="Key prefix.")


class Smtp(Model):
    """The mail relay the auth service submits its emails to."""

    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$",
        description="Host name of the relay (SES, SendGrid, Postmark, your own).",
    )
    port: int = Field(default=587, ge=1, le=65535, description="Port of the relay.")
    security: str = Field(
        default="starttls",
        description="starttls (587), tls (implicit TLS, 465) or none (trusted networks only).",
        json_schema_extra={"enum": ["starttls", "tls", "none"]},
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with keys username and password, when the relay wants a login.",
    )


class Email(Model):
    """How the auth service emails users (verification and password-reset links)."""

    from_address: str = Field(
        alias="from",
        min_length=3,
        max_length=320,
        pattern=r"^[^\r\n]*@[^\r\n]*$",
        description='The From header, e.g. "Shop <no-reply@shop.example.com>".',
    )
    smtp: Smtp = Field(description="The relay.")
    require_verified: bool = Field(
        default=False,
        description="Refuse password sign-ins until the user has verified the address.",
    )


#: Scopes for the platform's people (developers, release managers), not an app's users: the
#: auth service's default ``AUTH_RESTRICTED_SCOPES`` (a unit test keeps the two equal).
RestrictedScope = Literal[
    "telemetry:read", "telemetry:admin", "analytics:read", "analytics:admin", "appconfig:write"
]
RESTRICTED_SCOPES: tuple[str, ...] = get_args(RestrictedScope)


class Member(Model):
    """One of the platform's people and the restricted scopes they hold."""

    email: str = Field(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Their account's email; it counts once verified (an unverified address is "
        "anyone's claim).",
    )
    scopes: list[RestrictedScope] = Field(
        min_length=1,
        max_length=len(RESTRICTED_SCOPES),
        description="Restricted scopes they hold, e.g. telemetry:read to read crashes back.",
    )


class Auth(Model):
    """Token signing of the auth service, its email, and the platform's people."""

    signing_algorithm: str = Field(
        default="ES256",
        description="JWS algorithm of access tokens.",
        json_schema_extra={"enum": ["ES256", "RS256"]},
    )
    access_token_ttl_seconds: int = Field(
        default=900,
        ge=60,
        le=86400,
        alias="accessTokenTTLSeconds",
        description="Lifetime of access tokens.",
    )
    key_rotation: str | None = Field(
        default=None,
        max_length=63,
        description="Change this value to rotate the signing key: a new key becomes active "
        "and the previous one stays published until tokens it signed have expired.",
    )
    email: Email | None = Field(
        default=None,
        description="Where verification and password-reset emails go. Unset: they are only "
        "logged by the auth service (development), so users never receive them.",
    )
    members: list[Member] = Field(
        default_factory=list,
        max_length=100,
        description="The platform's people (developers, release managers) and the restricted "
        "scopes their tokens may carry, such as telemetry:read for mobileplane telemetry.",
    )


class Gateway(Model):
    """How apps reach the platform."""

    host: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Public host name; the gateway URL uses it when set.",
    )


class MobilePlatformSpec(Model):
    """The desired backend of one mobile app."""

    app: AppIdentity = Field(description="The app's identity.")
    image: Image = Field(default_factory=Image, description="Default image of the services.")
    scheduling: Scheduling = Field(
        default_factory=Scheduling, description="Node selection and tolerations of every pod."
    )
    services: Services = Field(default_factory=Services, description="Which services run.")
    gateway: Gateway = Field(default_factory=Gateway, description="How apps reach the platform.")
    auth: Auth = Field(default_factory=Auth, description="Token signing.")
    database: Database = Field(default_factory=Database, description="The app's database.")
    cache: Cache = Field(default_factory=Cache, description="The services' cache.")
    media: Media | None = Field(default=None, description="The media bucket.")
    push: Push = Field(default_factory=Push, description="Push credentials.")
    telemetry: Telemetry = Field(default_factory=Telemetry, description="Telemetry settings.")
    analytics: Analytics = Field(default_factory=Analytics, description="Analytics settings.")
    sync: Sync = Field(default_factory=Sync, description="Offline sync settings.")
    backups: Backups = Field(default_factory=Backups, description="Database backups.")

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.app.ios) || has(self.app.android)",
                "spec.app needs an ios or an android identity (or both)",
                field_path=".app",
            ),
            cel(
                "!has(self.backups) || !self.backups.enabled || has(self.backups.bucket) || "
                "has(self.media)",
                "backups need a target: set backups.bucket or configure media",
                field_path=".backups",
            ),
            cel(
                "!has(self.push) || !has(self.push.apns) || !has(self.app.ios) || "
                "self.app.ios.bundleIds.exists(b, b == self.push.apns.topic)",
                "push.apns.topic must be one of app.ios.bundleIds",
                field_path=".push.apns.topic",
            ),
        )
    )


# -- status ---------------------------------------------------------------------------------


class Condition(Model):
    """A Kubernetes condition (metav1.Condition)."""

    type: str = Field(max_length=316, description="Type of the condition, e.g. Ready.")
    status: str = Field(
        description="True, False or Unknown.",
        json_schema_extra={"enum": ["True", "False", "Unknown"]},
    )
    reason: str = Field(max_length=1024, description="Machine-readable reason, CamelCase.")
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was set for."
    )


class ServiceStatus(Model):
    """Availability of one service, read from its Deployment."""

    replicas: int = Field(default=0, description="Desired replicas.")
    available_replicas: int = Field(default=0, description="Available replicas.")
    available: bool = Field(default=False, description="Whether the Deployment is Available.")


class DatabaseStatus(Model):
    """The provisioned database."""

    name: str | None = Field(default=None, description="Database name.")
    role: str | None = Field(default=None, description="The app's least-privileged role.")
    host: str | None = Field(default=None, description="Server host.")


class SigningKeysStatus(Model):
    """The auth service's signing keys."""

    active_kid: str | None = Field(default=None, description="Key id signing new tokens.")
    published_kids: list[str] = Field(
        default_factory=list, description="Key ids in the JWKS (active and passive)."
    )
    rotation: str | None = Field(
        default=None, description="The spec.auth.keyRotation last acted upon."
    )


class AppStatus(Model):
    """How one platform of the app (iOS, Android) reports to telemetry."""

    telemetry_project: str = Field(
        description="The telemetry project (slug) of this platform's builds; MobileReleases "
        "read release health from it."
    )
    sentry_dsn: str = Field(
        alias="sentryDSN",
        description="The DSN to give the Sentry SDK in this platform's builds (public; it "
        "never changes).",
    )
    analytics_write_key: str | None = Field(
        default=None,
        description="The write key to give the Segment SDK in this platform's builds, with "
        "<gatewayURL>/analytics as its API host (public; it never changes).",
    )


class MobilePlatformStatus(Model):
    """The observed state of a MobilePlatform, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, DatabaseReady, CacheReady, BucketReady and ServicesReady.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    gateway_url: str | None = Field(
        default=None, alias="gatewayURL", description="Where apps reach the platform."
    )
    services: dict[str, ServiceStatus] = Field(
        default_factory=dict, description="Per-service availability."
    )
    database: DatabaseStatus | None = Field(default=None, description="The database.")
    bucket: str | None = Field(default=None, description="The media bucket.")
    signing_keys: SigningKeysStatus | None = Field(default=None, description="The signing keys.")
    apps: dict[str, AppStatus] = Field(
        default_factory=dict,
        description="Per app platform (ios, android): its telemetry project and Sentry DSN.",
    )
