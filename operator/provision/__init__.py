"""Gateways that provision a MobilePlatform's external resources: its database and its bucket.

- :mod:`.postgres` — the app's database, role and schema on an existing PostgreSQL server
  (the only operator module importing psycopg);
- :mod:`.buckets` — the app's media bucket on S3 or an S3-compatible server (the only one
  importing boto3/botocore);
- :mod:`.models` — what they take and return, and the checks that need no server (pure);
- :mod:`.errors` — :class:`ProvisioningError` and whether a retry can help.

Every method is async (boto3 runs in a worker thread), idempotent, and raises only
:class:`ProvisioningError` subclasses, so a kopf handler needs one ``except``::

    try:
        info = await memo.postgres.ensure(admin, name, name, password)
    except ProvisioningError as e:
        if e.transient:
            raise kopf.TemporaryError(str(e), delay=e.retry_after or 30) from e
        ...  # report a condition with reason e.reason and message str(e)
"""

from mobileplane.operator.provision.buckets import BucketProvisioner
from mobileplane.operator.provision.errors import (
    InProgress,
    ProvisioningError,
    Refused,
    Unreachable,
)
from mobileplane.operator.provision.models import (
    ENCRYPTION,
    LIFECYCLE,
    PUBLIC_ACCESS_BLOCK,
    AdminConnection,
    BucketInfo,
    DatabaseInfo,
    DeletedBucket,
    DroppedDatabase,
    S3Endpoint,
    ServerInfo,
)
from mobileplane.operator.provision.postgres import PostgresProvisioner

__all__ = [
    "ENCRYPTION",
    "LIFECYCLE",
    "PUBLIC_ACCESS_BLOCK",
    "AdminConnection",
    "BucketInfo",
    "BucketProvisioner",
    "DatabaseInfo",
    "DeletedBucket",
    "DroppedDatabase",
    "InProgress",
    "PostgresProvisioner",
    "ProvisioningError",
    "Refused",
    "S3Endpoint",
    "ServerInfo",
    "Unreachable",
]
