"""The S3 servers the bucket provisioner is tested against, and what each implements.

- ``versitygw``, the stack's main server: bucket encryption, public access block and
  lifecycle all answer NotImplemented.
- ``seaweedfs``, the stack's second server: all three are implemented. Default encryption
  is real (objects are encrypted at rest with SSE-S3); the public access block is stored
  and its ACL half enforced (a public-read ACL is refused), though a public bucket policy is
  still accepted, which AWS would refuse; lifecycle rules are stored and read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from mobileplane.operator.provision import (
    ENCRYPTION,
    LIFECYCLE,
    PUBLIC_ACCESS_BLOCK,
    S3Endpoint,
)


@dataclass(frozen=True)
class S3Server:
    """One server: where it is, which bucket settings it implements, where it keeps data."""

    name: str
    endpoint: S3Endpoint
    implements: frozenset[str]
    #: The directory its object data is written to (to look for plaintext at rest).
    data_dir: Path

    def client(self) -> Any:
        """A plain boto3 client, independent of the provisioner's own."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint.endpoint_url,
            aws_access_key_id=self.endpoint.access_key_id,
            aws_secret_access_key=self.endpoint.secret_access_key,
            region_name=self.endpoint.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


#: What each server implements, by name (the tests' expectations, in one table).
IMPLEMENTS: dict[str, frozenset[str]] = {
    "versitygw": frozenset(),
    "seaweedfs": frozenset({ENCRYPTION, PUBLIC_ACCESS_BLOCK, LIFECYCLE}),
}


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Files under ``root`` whose bytes contain ``needle``."""
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
