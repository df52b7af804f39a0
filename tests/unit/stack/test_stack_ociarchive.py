"""One-layer OCI archives: a valid image layout, reproducible, naming the image."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

from mobileplane.stack.ociarchive import image_archive


def _entries(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        out = {}
        for member in tar.getmembers():
            f = tar.extractfile(member)
            assert f is not None
            out[member.name] = f.read()
        return out


def _blob(entries: dict[str, bytes], descriptor: dict[str, Any]) -> bytes:
    algorithm, digest = descriptor["digest"].split(":")
    data = entries[f"blobs/{algorithm}/{digest}"]
    assert hashlib.sha256(data).hexdigest() == digest
    assert len(data) == descriptor["size"]
    return data


def test_image_layout_names_the_image_and_holds_the_files() -> None:
    archive = image_archive("localhost/x/pause:k1", {"/pause": b"\x7fELF..."}, ["/pause"])
    entries = _entries(archive)
    assert json.loads(entries["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(entries["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/x/pause:k1"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "k1"
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(_blob(entries, entry))
    config = json.loads(_blob(entries, manifest["config"]))
    assert config["config"]["Entrypoint"] == ["/pause"]
    (layer_descriptor,) = manifest["layers"]
    layer = _blob(entries, layer_descriptor)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (member,) = tar.getmembers()
        assert member.name == "pause" and member.mode == 0o755 and member.uid == 0
        f = tar.extractfile(member)
        assert f is not None and f.read() == b"\x7fELF..."


def test_reproducible_and_content_addressed() -> None:
    one = image_archive("a/b:1", {"/probe": b"one"}, ["/probe"])
    assert one == image_archive("a/b:1", {"/probe": b"one"}, ["/probe"])
    assert one != image_archive("a/b:1", {"/probe": b"two"}, ["/probe"])
