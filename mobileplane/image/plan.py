"""What ``mobileplane image build`` makes, decided from plain inputs: names, tags, labels, keys.

Two things are built and cached, each under a key of everything that decides its content:

- **the base**, a stand-in for the official ``python:3.11-slim-bookworm`` (no registry is
  reachable here): Debian ``bookworm`` from ``debootstrap --variant=minbase`` plus Debian's
  ``python3.11``. Its key is the Debian release, the package set and :data:`BASE_RECIPE`, so a
  change to how it is made gives a new base; Debian's updates do not (``--refresh-base``).
- **the image**, from the repository's ``Dockerfile`` with that base as ``BASE``. Its key is a
  digest of the build's inputs (:data:`CONTEXT_PATHS`, the files ``.dockerignore`` lets in),
  the base, the version and the source URL. The revision is a label, not part of the key: a
  commit that changes none of the inputs reuses the image (its revision label names the
  commit it was built at).

The image gets the tag the chart and the operator expect (``<repository>:<version>``) and a
content tag (``<repository>:content-<12 hex of the key>``) that changes exactly when the
image does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: The repository the chart (charts/mobileplane/values.yaml) and the CRD default
#: (operator/spec.py ``Image``) name.
REPOSITORY = "ghcr.io/mobileplane/mobileplane"
#: Where the image's source lives (label ``org.opencontainers.image.source``).
SOURCE_URL = "https://github.com/mobileplane/mobileplane"

#: The Debian release and Python of the Dockerfile's documented BASE
#: (``python:3.11-slim-bookworm``): the base made here must match both.
DEBIAN_RELEASE = "bookworm"
BASE_PYTHON = "python3.11"
#: What the official slim image has besides Python: TLS roots and /etc/services.
#: ``python3.11-venv`` brings ensurepip (the official image has pip instead).
BASE_PACKAGES: tuple[str, ...] = (BASE_PYTHON, f"{BASE_PYTHON}-venv", "ca-certificates", "netbase")
#: Bump when the way the base is made changes (mobileplane/image/builder.py ``make_base``).
BASE_RECIPE = 1
#: The base's environment, as the official image sets it.
BASE_ENV: tuple[tuple[str, str], ...] = (
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
)
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

#: What the build sees (the ``!`` entries of .dockerignore) and so what keys the image.
CONTEXT_PATHS: tuple[str, ...] = (
    "pyproject.toml",
    "README.md",
    "mobileplane",
    "operator",
    "rollout",
    "services",
)
#: Files of the repository that shape the image without being in its context.
RECIPE_PATHS: tuple[str, ...] = ("Dockerfile", ".dockerignore")
#: Names .dockerignore keeps out of the context (byte code made on the developer's machine).
IGNORED_NAMES: tuple[str, ...] = ("__pycache__",)
IGNORED_SUFFIXES: tuple[str, ...] = (".pyc",)

#: CA bundles pip may need inside the build (a TLS-inspecting proxy): the first that is set.
CA_BUNDLE_VARIABLES: tuple[str, ...] = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class BasePlan:
    """The base image: its cache key and its local name."""

    key: str
    ref: str
    release: str
    packages: tuple[str, ...]


@dataclass(frozen=True)
class InputFile:
    """One input of the build: a path relative to the repository, and what it holds.

    ``content`` is the file's bytes' SHA-256, or for a symbolic link its target.
    """

    path: str
    kind: str  # "file", "executable" or "symlink"
    content: str


@dataclass(frozen=True)
class ImagePlan:
    """What one build produces and with what."""

    key: str
    version: str
    revision: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def version_tag(self) -> str:
        """``<repository>:<version>``: what the chart and MobilePlatforms name by default."""
        return self.tags[0]

    @property
    def content_tag(self) -> str:
        return self.tags[1]

    @property
    def archive_name(self) -> str:
        """The file name of the image's archive, unique per key."""
        return f"mobileplane-{self.version}-{self.key[:12]}.docker.tar"


def base_plan(
    release: str = DEBIAN_RELEASE,
    packages: Iterable[str] = BASE_PACKAGES,
    recipe: int = BASE_RECIPE,
) -> BasePlan:
    """The base for a Debian release and package set (order and repeats do not matter)."""
    wanted = tuple(sorted(set(packages)))
    digest = _digest(["base", str(recipe), release, *wanted])
    return BasePlan(
        key=digest,
        ref=f"localhost/mobileplane-base:{release}-{digest[:12]}",
        release=release,
        packages=wanted,
    )


def in_context(path: str) -> bool:
    """Whether a repository-relative path is sent to the build (mirrors .dockerignore)."""
    parts = path.split("/")
    if parts[0] not in CONTEXT_PATHS:
        return False
    if any(p in IGNORED_NAMES for p in parts):
        return False
    return not path.endswith(IGNORED_SUFFIXES)


def inputs_digest(files: Iterable[InputFile]) -> str:
    """One digest of every input; the order files were found in does not matter."""
    rows = sorted(f"{f.path}\0{f.kind}\0{f.content}" for f in files)
    return _digest(["inputs", *rows])


def image_plan(
    *,
    version: str,
    revision: str,
    inputs: str,
    base_ref: str,
    created: str,
    source: str = SOURCE_URL,
    repository: str = REPOSITORY,
) -> ImagePlan:
    """Tags, labels, build arguments and cache key of the image.

    ``inputs`` is :func:`inputs_digest` of the build's files; ``revision`` the commit (with
    ``-dirty`` when the inputs differ from it); ``created`` an RFC 3339 time (the commit's,
    so a rebuild of the same commit labels the same).
    """
    key = _digest(["image", inputs, base_ref, version, source, repository])
    tags = (f"{repository}:{version}", f"{repository}:content-{key[:12]}")
    build_args = {
        "BASE": base_ref,
        "VERSION": version,
        "REVISION": revision,
        "CREATED": created,
        "SOURCE": source,
    }
    labels = {
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.base.name": base_ref,
        # Not an OCI key: which inputs the image was built from (its cache key).
        "io.mobileplane.image.key": key,
    }
    return ImagePlan(
        key=key,
        version=version,
        revision=revision,
        tags=tags,
        labels=labels,
        build_args=build_args,
    )


def ca_bundle(environ: Mapping[str, str], exists: Iterable[str]) -> str | None:
    """The CA bundle to hand pip inside the build: the first variable set to an existing
    file, else Debian's bundle when present, else None (pip's own roots)."""
    present = set(exists)
    for name in CA_BUNDLE_VARIABLES:
        value = environ.get(name, "")
        if value and value in present:
            return value
    return DEFAULT_CA_BUNDLE if DEFAULT_CA_BUNDLE in present else None


def sources_list(release: str, mirror: str, security_mirror: str) -> str:
    """APT sources for the base: the release, its updates and its security fixes."""
    return (
        f"deb {mirror} {release} main\n"
        f"deb {mirror} {release}-updates main\n"
        f"deb {security_mirror} {release}-security main\n"
    )


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\n")
    return h.hexdigest()
