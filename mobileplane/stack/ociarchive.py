"""A one-layer OCI image archive made from files, for ``ctr images import`` (no registry).

The real node's sandbox (pause) image and its check tool are single static Go binaries; an
image of one layer holding them needs no image builder. The archive is an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/sha256/...``) and is byte-for-byte reproducible:
fixed timestamps and owners, sorted entries.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


def _tar(entries: Mapping[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            data, mode = entries[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def image_archive(
    reference: str, files: Mapping[str, bytes], entrypoint: list[str], user: str = ""
) -> bytes:
    """An OCI archive of the image ``reference`` (``name:tag``) with ``files`` (mode 0755)."""
    layer = _tar({path.lstrip("/"): (data, 0o755) for path, data in files.items()})
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Entrypoint": entrypoint, "User": user, "WorkingDir": "/"},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "mobileplane stack"}],
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": _descriptor(CONFIG_TYPE, config),
            "layers": [_descriptor(LAYER_TYPE, layer)],
        }
    )
    tag = reference.rsplit(":", 1)[1]
    index = _json(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    **_descriptor(MANIFEST_TYPE, manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": reference,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
    )
    entries: dict[str, tuple[bytes, int]] = {
        "oci-layout": (_json({"imageLayoutVersion": "1.0.0"}), 0o644),
        "index.json": (index, 0o644),
    }
    for blob in (layer, config, manifest):
        entries["blobs/sha256/" + hashlib.sha256(blob).hexdigest()] = (blob, 0o644)
    return _tar(entries)
