"""The real node's programs and images, built from source into the version-keyed cache.

kubelet and kube-proxy through the control plane's Kubernetes wrapper module, CoreDNS with
only the plugins the stack's Corefile uses, crictl, and the pause and probe images (static Go
programs in one-layer OCI archives). Every Go build shares the machine's Go build and module
caches with the control plane's.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from mobileplane.stack import nodeplan
from mobileplane.stack.components.base import Context
from mobileplane.stack.components.kube import build_kube_wrapper
from mobileplane.stack.gobuild import Build
from mobileplane.stack.ociarchive import image_archive
from mobileplane.stack.versions import pin

NODE_BINARIES = ("kubelet", "kube-proxy")


def build_kube_node(ctx: Context) -> Build:
    """kubelet and kube-proxy from the same wrapper module as the control plane (most
    packages are already compiled by its build)."""
    return build_kube_wrapper(
        ctx,
        "kubernetes-node",
        NODE_BINARIES,
        resolving="resolving kubelet and kube-proxy modules",
        duration="minutes; the control plane's build cache is reused",
    )


def _coredns_main() -> str:
    return resources.files("mobileplane.stack").joinpath("coredns", "main.go").read_text()


def coredns_key() -> str:
    """CoreDNS's version plus a digest of the main that picks its plugins."""
    digest = hashlib.sha256(_coredns_main().encode()).hexdigest()[:8]
    return f"{pin('coredns').version}-{digest}"


def build_coredns(ctx: Context) -> Build:
    """CoreDNS with the Corefile's plugins only (``mobileplane/stack/coredns/main.go``)."""
    p = pin("coredns")
    b = Build(ctx, "coredns", coredns_key())
    if b.complete(["coredns"]):
        return b
    b.reset()
    (b.root / "go.mod").write_text(
        f"module mobileplane.local/corednsbuild\n\ngo 1.24.0\n\nrequire {p.source} {p.version}\n"
    )
    (b.root / "main.go").write_text(_coredns_main())
    # No `go mod tidy`: it would also fetch the test dependencies of every package; the build
    # (GOFLAGS=-mod=mod) resolves and fetches only what it compiles.
    b.go(
        f"building CoreDNS {p.version} (the plugins of the stack's Corefile)",
        ["build", "-trimpath", "-ldflags=-s -w", "-o", str(b.bin / "coredns"), "."],
    )
    b.mark_complete()
    return b


def build_crictl(ctx: Context) -> Build:
    p = pin("cri-tools")
    b = Build(ctx, "cri-tools", p.version)
    if not b.complete(["crictl"]):
        b.install(f"{p.source}/cmd/crictl", ["crictl"])
    return b


def _image_sources() -> dict[str, str]:
    root = resources.files("mobileplane.stack").joinpath("nodeimages")
    return {name: root.joinpath(name, "main.go").read_text() for name in ("pause", "probe")}


def images_key() -> str:
    """The node images' version: a digest of their sources and of the archive format."""
    digest = hashlib.sha256()
    for name, text in sorted(_image_sources().items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    digest.update(resources.files("mobileplane.stack").joinpath("ociarchive.py").read_bytes())
    return digest.hexdigest()[:12]


def image_refs() -> dict[str, str]:
    key = images_key()
    return {"pause": f"{nodeplan.PAUSE_IMAGE}:{key}", "probe": f"{nodeplan.PROBE_IMAGE}:{key}"}


def build_node_images(ctx: Context) -> Build:
    """The pause and probe images: static Go binaries in one-layer OCI archives."""
    b = Build(ctx, "node-images", images_key())
    archives = [f"{name}.oci.tar" for name in image_refs()]
    if b.complete(archives):
        return b
    b.reset()
    (b.root / "go.mod").write_text("module mobileplane.local/nodeimages\n\ngo 1.24.0\n")
    for name, text in _image_sources().items():
        (b.root / name).mkdir()
        (b.root / name / "main.go").write_text(text)
    b.go(
        "building the pause and probe images' binaries",
        ["build", "-trimpath", "-ldflags=-s -w", "-o", str(b.bin) + "/", "./pause", "./probe"],
    )
    for name, ref in image_refs().items():
        binary = (b.bin / name).read_bytes()
        (b.bin / f"{name}.oci.tar").write_bytes(
            image_archive(ref, {f"/{name}": binary}, [f"/{name}"])
        )
    b.mark_complete()
    return b
