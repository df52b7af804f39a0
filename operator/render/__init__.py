"""Pure rendering of a MobilePlatform's children: typed input in, Kubernetes manifests out.

Deciding, not doing (see docs/architecture.md): nothing here performs I/O, reads the clock
or draws random numbers; an import-linter contract keeps I/O libraries out. The caller
resolves what the outside world knows (where the database is, the generated material) into
a :class:`RenderInput` and performs what :func:`render` returns.

Modules, one per kind of child: :mod:`.secrets`, :mod:`.config` (and :mod:`.confighash`),
:mod:`.routes`, :mod:`.network`, :mod:`.datastores`, :mod:`.jobs`, :mod:`.services`; shared
naming in :mod:`.names` and pod building blocks in :mod:`.pods`.
"""

from mobileplane.operator.render.children import child_key, render
from mobileplane.operator.render.confighash import config_hash
from mobileplane.operator.render.inputs import (
    DatabaseTarget,
    GeneratedMaterial,
    PlatformRef,
    RenderInput,
)
from mobileplane.operator.render.names import (
    CONFIG_HASH_ANNOTATION,
    GENERATED_ANNOTATION,
    PLATFORM_UID_ANNOTATION,
    base_name,
    child_name,
    gateway_url,
    labels,
    platform_selector,
    postgres_host,
    service_url,
)
from mobileplane.operator.render.secrets import (
    database_secret_name,
    is_generated,
    keyset_from_secret_data,
    signing_keys_data,
    signing_keys_secret_name,
)

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "GENERATED_ANNOTATION",
    "PLATFORM_UID_ANNOTATION",
    "DatabaseTarget",
    "GeneratedMaterial",
    "PlatformRef",
    "RenderInput",
    "base_name",
    "child_key",
    "child_name",
    "config_hash",
    "database_secret_name",
    "gateway_url",
    "is_generated",
    "keyset_from_secret_data",
    "labels",
    "platform_selector",
    "postgres_host",
    "render",
    "service_url",
    "signing_keys_data",
    "signing_keys_secret_name",
]
