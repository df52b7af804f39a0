"""What the provisioning gateways take and give back, and the checks that need no server.

Pure: plain data and the validation of names and rules, so it can be tested without a
server and used by deciding code (e.g. to describe a result in a condition). The gateways
(:mod:`.postgres`, :mod:`.buckets`) do the I/O around it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mobileplane.operator.provision.errors import Refused
from mobileplane.operator.spec import BUCKET_NAME, PG_IDENTIFIER, LifecycleRule

#: The schema of the app's tables, owned by the app's role and first on its search_path.
SCHEMA = "app"

#: Databases every server has; the operator never creates, grants on or drops them.
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})

#: libpq's sslmode values.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_IDENTIFIER = re.compile(PG_IDENTIFIER)
_BUCKET = re.compile(BUCKET_NAME)
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

#: The bucket settings :class:`BucketInfo` reports on.
ENCRYPTION = "encryption"
PUBLIC_ACCESS_BLOCK = "public-access-block"
LIFECYCLE = "lifecycle"


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminConnection:
    """How to log in to a server as a role that may create databases and roles.

    ``source`` says where the credentials came from (e.g. ``"Secret shop/shop-postgres-admin"``)
    and appears in error messages, so whoever reads the condition knows what to fix.
    """

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    sslmode: str = "prefer"
    dbname: str = "postgres"
    source: str = ""

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str], *, source: str) -> AdminConnection:
        """From a Secret's decoded data: host, port, username, password; sslmode, database."""
        missing = [k for k in ("host", "port", "username", "password") if not data.get(k)]
        if missing:
            raise Refused(
                f"{source} lacks key(s) {', '.join(missing)}: add them (a database admin "
                "Secret has host, port, username and password; optional sslmode and database)"
            )
        try:
            port = int(data["port"])
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise Refused(f"{source} has port {data['port']!r}: set a TCP port number")
        sslmode = data.get("sslmode") or "prefer"
        if sslmode not in SSLMODES:
            raise Refused(f"{source} has sslmode {sslmode!r}: use one of {', '.join(SSLMODES)}")
        return cls(
            host=data["host"],
            port=port,
            user=data["username"],
            password=data["password"],
            sslmode=sslmode,
            dbname=data.get("database") or "postgres",
            source=source,
        )

    @property
    def server(self) -> str:
        return f"PostgreSQL at {self.host}:{self.port}"

    @property
    def admin(self) -> str:
        """``the admin role 'x' in Secret y``, for messages."""
        where = f" in {self.source}" if self.source else ""
        return f"the admin role {self.user!r}{where}"


@dataclass(frozen=True)
class ServerInfo:
    """What :meth:`PostgresProvisioner.check` found: the server and the admin's powers."""

    version: str
    version_num: int
    user: str
    superuser: bool
    createdb: bool
    createrole: bool

    @property
    def missing_privileges(self) -> tuple[str, ...]:
        """The role attributes :meth:`PostgresProvisioner.ensure` needs that the admin lacks."""
        if self.superuser:
            return ()
        return tuple(
            name
            for name, has in (("CREATEDB", self.createdb), ("CREATEROLE", self.createrole))
            if not has
        )


@dataclass(frozen=True)
class DatabaseInfo:
    """The app's database as :meth:`PostgresProvisioner.ensure` left it."""

    database: str
    role: str
    schema: str
    owner: str
    created_database: bool
    created_role: bool
    server_version: str

    @property
    def created(self) -> bool:
        """Whether this call created anything (for an event)."""
        return self.created_database or self.created_role


@dataclass(frozen=True)
class DroppedDatabase:
    """What :meth:`PostgresProvisioner.drop` removed (False: it was already gone)."""

    database: str
    role: str
    dropped_database: bool
    dropped_role: bool


def validate_identifier(name: str, what: str) -> str:
    """``name`` if it is a lower-case PostgreSQL identifier (the spec's pattern), else Refused."""
    if not _IDENTIFIER.fullmatch(name):
        raise Refused(
            f"{what} name {name!r} is not allowed: use 1 to 63 characters of a-z, 0-9 and _, "
            "not starting with a digit (set database.name)"
        )
    return name


def validate_names(admin: AdminConnection, database: str, role: str) -> None:
    """Refuse names that are invalid, reserved, or the admin's own."""
    validate_identifier(database, "database")
    validate_identifier(role, "role")
    if database in RESERVED_DATABASES or database == admin.dbname:
        raise Refused(
            f"database {database!r} is a system database or the admin's own: "
            "set database.name to a name of the app's own"
        )
    if role.startswith("pg_"):
        raise Refused(f"role names starting with pg_ are reserved ({role!r}): set database.name")
    if role == admin.user:
        raise Refused(
            f"role {role!r} is {admin.admin} itself: the app needs a role of its own; "
            "set database.name to another name"
        )


# -- S3 --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    """An S3 API and the credentials to use there; ``endpoint_url`` None means AWS.

    ``source`` says where the credentials came from (e.g. ``"Secret shop/shop-media"``) and
    appears in error messages.
    """

    endpoint_url: str | None
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    source: str = ""

    @classmethod
    def from_secret_data(
        cls, data: Mapping[str, str], *, endpoint_url: str | None, region: str, source: str
    ) -> S3Endpoint:
        """From a Secret's decoded data (keys accessKeyId, secretAccessKey) and the spec."""
        missing = [k for k in ("accessKeyId", "secretAccessKey") if not data.get(k)]
        if missing:
            raise Refused(f"{source} lacks key(s) {', '.join(missing)}: add them")
        return cls(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=data["accessKeyId"],
            secret_access_key=data["secretAccessKey"],
            source=source,
        )

    @property
    def server(self) -> str:
        return f"S3 at {self.endpoint_url}" if self.endpoint_url else f"AWS S3 ({self.region})"

    @property
    def in_source(self) -> str:
        """`` in Secret x`` (or nothing), for messages."""
        return f" in {self.source}" if self.source else ""


@dataclass(frozen=True)
class BucketInfo:
    """The bucket as :meth:`BucketProvisioner.ensure` left it.

    Each setting (:data:`ENCRYPTION`, :data:`PUBLIC_ACCESS_BLOCK`, :data:`LIFECYCLE`) is in
    exactly one of: ``applied`` (set and read back as wanted), ``unverified`` (the server took
    it but cannot show it back) or ``unsupported`` (the server does not implement it).
    ``notes`` says, per setting not applied, which call answered what, for a condition message.
    """

    bucket: str
    created: bool
    applied: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeletedBucket:
    """What :meth:`BucketProvisioner.delete` did (``existed`` False: it was already gone)."""

    bucket: str
    existed: bool
    objects_deleted: int = 0
    uploads_aborted: int = 0


def validate_bucket_name(name: str) -> str:
    """``name`` if it follows the S3 bucket naming rules, else Refused."""
    if not _BUCKET.fullmatch(name) or ".." in name or _IPV4.fullmatch(name):
        raise Refused(
            f"bucket name {name!r} is not allowed: use 3 to 63 characters of a-z, 0-9, . and -, "
            "starting and ending with a letter or digit, not shaped like an IP address "
            "(set media.bucket)"
        )
    return name


def lifecycle_configuration(rules: Sequence[LifecycleRule]) -> dict[str, Any]:
    """The S3 ``LifecycleConfiguration`` document for the spec's rules (one per rule, enabled).

    >>> rule = LifecycleRule(id="tmp", prefix="tmp/", expiration_days=7)
    >>> lifecycle_configuration([rule])["Rules"][0]["Expiration"]
    {'Days': 7}
    """
    documents: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise Refused(f"lifecycle rule id {rule.id!r} appears twice: make ids unique")
        seen.add(rule.id)
        if rule.expiration_days is None and rule.abort_incomplete_multipart_upload_days is None:
            raise Refused(
                f"lifecycle rule {rule.id!r} does nothing: set expirationDays or "
                "abortIncompleteMultipartUploadDays"
            )
        document: dict[str, Any] = {
            "ID": rule.id,
            "Filter": {"Prefix": rule.prefix},
            "Status": "Enabled",
        }
        if rule.expiration_days is not None:
            document["Expiration"] = {"Days": rule.expiration_days}
        if rule.abort_incomplete_multipart_upload_days is not None:
            document["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": rule.abort_incomplete_multipart_upload_days
            }
        documents.append(document)
    return {"Rules": documents}


def lifecycle_summary(configuration: Mapping[str, Any]) -> frozenset[tuple[Any, ...]]:
    """What matters in a lifecycle document, comparable between what we sent and what a
    server returns (which may write an empty filter as ``{}`` or use the legacy top-level
    ``Prefix``): (id, prefix, status, expiration days, abort days) per rule."""
    out = set()
    for rule in configuration.get("Rules", []):
        prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", "")) or ""
        out.add(
            (
                rule.get("ID"),
                prefix,
                rule.get("Status"),
                rule.get("Expiration", {}).get("Days"),
                rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
            )
        )
    return frozenset(out)
