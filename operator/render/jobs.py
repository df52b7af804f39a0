"""Run-to-completion work: the database migrations, and the scheduled backups.

**Migrations** — a Job ``<name>-migrate-<hash>`` running ``mobileplane migrate`` (every
service's migrations, the kit's first; tables of a disabled service are harmless and ready
when it is enabled). A Job's spec is (nearly) immutable, and a migration should run once per
schema version, so the name carries a hash of everything that generates the Job: what decides
the outcome — the image (which holds the migrations) and the database it targets (see
:func:`migration_inputs`) — and the rendered Job spec itself, so that no change ever needs an
update of an existing Job. A new image makes a new Job; re-rendering the same inputs names
the same Job, which the caller finds done; service settings and replica counts do not touch
it. Its
retries (``backoffLimit``) outlast an in-cluster PostgreSQL that is still starting; finished
Jobs are removed after a day, so an image change a week later does not find stale ones —
the caller must remember which hash it migrated (e.g. in status), not rely on the Job staying.

**Backups** — a CronJob ``<name>-backup`` when ``spec.backups.enabled``: ``pg_dump`` in an init
container writes a custom-format dump to an ``emptyDir``; the AWS CLI then copies it to
``s3://<bucket>/<prefix><database>/<UTC time>.dump`` (bucket ``backups.bucket`` or the media
bucket; credentials from the media Secret, else the pod's ambient credentials). Forbid keeps
runs from overlapping on a slow dump. The schedule is UTC, as the spec says. Expiry after
``backups.retentionDays`` is an S3 lifecycle rule on the prefix, the bucket's business, not
this job's. Values from the spec reach the shell script as environment variables only, never
spliced into it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mobileplane.operator.render.config import BACKUP
from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import child_name, labels, metadata
from mobileplane.operator.render.pods import (
    app_image,
    container_security_context,
    env_config,
    env_secret,
    env_value,
    pod_spec,
    tmp_volume,
)
from mobileplane.operator.render.secrets import (
    DB_HOST,
    DB_NAME,
    DB_PASSWORD,
    DB_PORT,
    DB_URL,
    DB_USERNAME,
    database_secret_name,
)

#: ~10 minutes of exponential backoff (10 s, 20 s, … 320 s): longer than an in-cluster
#: PostgreSQL takes to initialise, short enough that a real failure surfaces.
MIGRATE_BACKOFF_LIMIT = 6
#: A migration running longer than this is stuck on a lock, not working.
MIGRATE_DEADLINE_SECONDS = 1800
#: Keep a finished migration Job a day: long enough to read its logs.
MIGRATE_TTL_SECONDS = 86400

#: The AWS CLI v2 reads AWS_ENDPOINT_URL (since 2.13), so S3-compatible servers need no flag.
AWS_CLI_IMAGE = "amazon/aws-cli:2.17.0"
#: A backup that missed its slot by more than this (controller down) waits for the next one.
BACKUP_STARTING_DEADLINE_SECONDS = 3600
#: Twice tried, then left for a human: a failing dump fails the same way a third time.
BACKUP_BACKOFF_LIMIT = 1
#: Kept finished runs of each outcome, to read the last few logs.
BACKUP_HISTORY = 3

DUMP_DIR = "/backup"
DUMP_FILE = f"{DUMP_DIR}/database.dump"
UPLOAD_SCRIPT = """\
set -eu
key="${BACKUP_PREFIX}${BACKUP_DATABASE}/$(date -u +%Y%m%dT%H%M%SZ).dump"
aws s3 cp --only-show-errors "$DUMP_FILE" "s3://${BACKUP_BUCKET}/${key}"
echo "uploaded s3://${BACKUP_BUCKET}/${key}"
"""


#: Room for the CLIs' temporary files.
TMP_SIZE = "64Mi"


def migration_inputs(inp: RenderInput) -> dict[str, Any]:
    """What decides a migration's outcome: the migrations' image and the target database."""
    db = inp.database
    return {"image": app_image(inp), "database": [db.host, db.port, db.name]}


def migration_hash(inp: RenderInput, job_spec: dict[str, Any]) -> str:
    """10 hex digits of sha256 over :func:`migration_inputs` and the Job's spec.

    Ten digits: a collision needs about a million distinct Jobs in one namespace.
    """
    payload = {"inputs": migration_inputs(inp), "spec": job_spec}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def migration_job(inp: RenderInput) -> dict[str, Any]:
    """The Job that migrates the database to the schema of the current image."""
    platform = inp.platform
    container = {
        "name": "migrate",
        "image": app_image(inp),
        "imagePullPolicy": inp.spec.image.pull_policy,
        "command": ["mobileplane", "migrate"],
        "env": [
            env_value("SERVICE_NAME", "migrate"),
            env_secret("DATABASE_URL", database_secret_name(inp.platform), DB_URL),
        ],
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_volume(TMP_SIZE)[1]],
    }
    spec = {
        "backoffLimit": MIGRATE_BACKOFF_LIMIT,
        "activeDeadlineSeconds": MIGRATE_DEADLINE_SECONDS,
        "ttlSecondsAfterFinished": MIGRATE_TTL_SECONDS,
        "template": {
            "metadata": {"labels": labels(platform, "migrate")},
            "spec": pod_spec(
                [container],
                [tmp_volume(TMP_SIZE)[0]],
                restart_policy="Never",
                placement=inp.spec.scheduling.pod_fields(),
            ),
        },
    }
    name = child_name(platform, f"migrate-{migration_hash(inp, spec)}")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(platform, name, "migrate"),
        "spec": spec,
    }


def _dump_container(inp: RenderInput) -> dict[str, Any]:
    secret = database_secret_name(inp.platform)
    # libpq's own variables: no password on the command line.
    env = [
        env_secret("PGHOST", secret, DB_HOST),
        env_secret("PGPORT", secret, DB_PORT),
        env_secret("PGUSER", secret, DB_USERNAME),
        env_secret("PGPASSWORD", secret, DB_PASSWORD),
        env_secret("PGDATABASE", secret, DB_NAME),
    ]
    if inp.database.sslmode:
        env.append(env_value("PGSSLMODE", inp.database.sslmode))
    return {
        "name": "dump",
        # pg_dump must be at least the server's major version: the spec's PostgreSQL image.
        "image": inp.spec.database.in_cluster.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["pg_dump", "--format=custom", "--no-owner", f"--file={DUMP_FILE}"],
        "env": env,
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "backup", "mountPath": DUMP_DIR}, tmp_volume(TMP_SIZE)[1]],
    }


def _upload_container(inp: RenderInput) -> dict[str, Any]:
    config = child_name(inp.platform, "config")
    env = [
        env_config("BACKUP_BUCKET", config, "BACKUP_BUCKET"),
        env_config("BACKUP_PREFIX", config, "BACKUP_PREFIX"),
        env_secret("BACKUP_DATABASE", database_secret_name(inp.platform), DB_NAME),
        env_config("AWS_REGION", config, "AWS_REGION", optional=True),
        env_config("AWS_ENDPOINT_URL", config, "AWS_ENDPOINT_URL", optional=True),
        env_value("DUMP_FILE", DUMP_FILE),
        env_value("HOME", "/tmp"),  # noqa: S108 - the CLI's cache dir, on the pod's emptyDir
    ]
    if inp.spec.media:
        media = inp.spec.media.credentials_secret_ref.name
        env.append(env_secret("AWS_ACCESS_KEY_ID", media, "accessKeyId"))
        env.append(env_secret("AWS_SECRET_ACCESS_KEY", media, "secretAccessKey"))
    return {
        "name": "upload",
        "image": AWS_CLI_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", UPLOAD_SCRIPT],
        "env": env,
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "backup", "mountPath": DUMP_DIR, "readOnly": True},
            tmp_volume(TMP_SIZE)[1],
        ],
    }


def backup_cronjob(inp: RenderInput) -> dict[str, Any] | None:
    """The backup CronJob, or None when backups are off."""
    backups = inp.spec.backups
    if not backups.enabled:
        return None
    platform = inp.platform
    volumes = [{"name": "backup", "emptyDir": {}}, tmp_volume(TMP_SIZE)[0]]
    pod = pod_spec(
        [_upload_container(inp)],
        volumes,
        restart_policy="Never",
        init_containers=[_dump_container(inp)],
        placement=inp.spec.scheduling.pod_fields(),
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(platform, child_name(platform, "backup"), BACKUP),
        "spec": {
            "schedule": backups.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": BACKUP_STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": BACKUP_HISTORY,
            "failedJobsHistoryLimit": BACKUP_HISTORY,
            "jobTemplate": {
                "metadata": {"labels": labels(platform, BACKUP)},
                "spec": {
                    "backoffLimit": BACKUP_BACKOFF_LIMIT,
                    "template": {"metadata": {"labels": labels(platform, BACKUP)}, "spec": pod},
                },
            },
        },
    }
