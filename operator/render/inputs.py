"""What the renderer needs, as plain frozen data: everything the caller resolved or generated.

The renderer decides; it never looks anything up. So whatever comes from the outside world
arrives here already resolved:

- the platform's identity (:class:`PlatformRef`) from the object's metadata;
- its parsed spec (:class:`~mobileplane.operator.spec.MobilePlatformSpec`);
- where the services connect to PostgreSQL (:class:`DatabaseTarget`): the external server's
  host read from the admin Secret, or the in-cluster Postgres Service (see
  :func:`mobileplane.operator.render.names.postgres_host`), and the database and role names
  the provisioner settled on;
- generated material (:class:`GeneratedMaterial`): the database password, the signing key
  set, the apps' ingestion keys and the sync checkpoint keys. The caller passes them *as
  stored*: read back from the generated Secrets when these exist, freshly generated only when
  they do not. Rendering the same stored material twice gives the same objects, so nothing
  churns;
- optionally, versions of the Secrets the pods reference (``secret_versions``, e.g. their
  ``resourceVersion`` or a digest the caller computed), so that a changed Secret rolls exactly
  the Deployments that read it. Versions, never values: the config hash is an annotation
  anyone can read.

The cache URL of mode External is not repeated here: ``spec.cache.urlSecretRef`` already names
it, and one source of truth cannot disagree with itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mobileplane.operator.keys import KeySet
from mobileplane.operator.spec import MobilePlatformSpec


@dataclass(frozen=True)
class PlatformRef:
    """The MobilePlatform object the children belong to."""

    name: str
    namespace: str
    #: ``metadata.uid``; stamped on the generated Secrets so the caller can tell a Secret of
    #: this platform from one left behind by a deleted platform of the same name (garbage
    #: collection of the old one's children runs in the background).
    uid: str


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the services connect: the app's database on a server, as its own role."""

    host: str
    port: int
    name: str
    role: str
    #: libpq ``sslmode`` to put in the URL (e.g. ``require`` for a managed server); None
    #: leaves libpq's default.
    sslmode: str | None = None


@dataclass(frozen=True)
class GeneratedMaterial:
    """Random material made by the caller (the renderer has no randomness of its own)."""

    db_password: str
    #: The auth service's signing keys: the active key signs, every key is published.
    signing_keys: KeySet
    #: The sync service's ``SYNC_CHECKPOINT_KEYS`` (one random key, made once; the first of
    #: a comma-separated list signs checkpoint tokens, every one listed verifies them).
    sync_checkpoint_keys: str
    #: The telemetry DSN public keys by app platform (``ios``, ``android``), see
    #: :mod:`.appkeys`; a platform without one gets no telemetry project.
    app_keys: Mapping[str, str] = field(default_factory=dict)
    #: The analytics write keys by app platform.
    write_keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderInput:
    """Everything :func:`mobileplane.operator.render.render` needs."""

    platform: PlatformRef
    spec: MobilePlatformSpec
    database: DatabaseTarget
    generated: GeneratedMaterial
    #: Secret name -> version, for Secrets the pods reference (generated or user-supplied).
    #: Missing names hash as unknown, so passing nothing is fine; passing a version makes a
    #: rotated Secret roll the Deployments that read it.
    secret_versions: Mapping[str, str] = field(default_factory=dict)
    #: The namespace of the release controller (the chart's namespace): its pods may reach the
    #: services it reads from and writes to (telemetry, app config).
    controller_namespace: str = "mobileplane-system"
