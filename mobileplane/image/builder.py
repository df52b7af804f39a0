"""Building the image here: no Docker daemon, no registry; buildah, skopeo and debootstrap.

:mod:`mobileplane.image.plan` decides names, tags and keys; this module runs the tools around
those decisions. Everything lives under ``<cache>/image/``: a containers-storage of its own
(apart from any other buildah user; ``overlay`` where the kernel has it, see
:func:`storage_driver`), the image archives, ``records/`` and ``current.json``, the record of
the last build that :func:`current` reads (the stack's real node imports that archive with
``ctr -n k8s.io images import``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import resource
import shutil
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from mobileplane import __version__
from mobileplane.image import plan as p
from mobileplane.stack.components.debian import install_packages
from mobileplane.stack.config import cache_dir
from mobileplane.stack.errors import StackError
from mobileplane.stack.progress import Progress

COMPONENT = "image"
#: Tools and the Debian packages that bring them.
TOOLS: dict[str, str] = {"buildah": "buildah", "skopeo": "skopeo", "debootstrap": "debootstrap"}
#: What the image test runs the image with (a read-only root, as in the operator's pods).
RUN_TOOLS: dict[str, str] = {"podman": "podman", "runc": "runc"}
#: A cold build on 2 shared cores took ~6 min; a stuck download should not hang CI forever.
BUILD_TIMEOUT = 45 * 60
#: Open files and processes a container run here gets (see :meth:`Tools.run_args`).
RUN_NOFILE = 4096
RUN_NPROC = 4096
#: Archives kept besides the current one (older ones are deleted after a build).
KEEP_ARCHIVES = 2


@dataclass(frozen=True)
class BuiltImage:
    """The result of a build, as recorded in ``<cache>/image/current.json``."""

    archive: str  # a docker-archive tar holding both tags: `ctr -n k8s.io images import` it
    tags: list[str]
    key: str
    version: str
    revision: str
    base: str
    unpacked_bytes: int
    compressed_bytes: int

    @property
    def version_tag(self) -> str:
        return self.tags[0]


def image_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "image"


def current(cache: Path | None = None) -> BuiltImage | None:
    """The last image built on this machine, or None (then run ``mobileplane image build``)."""
    record = image_dir(cache) / "current.json"
    try:
        built = BuiltImage(**json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return built if Path(built.archive).exists() else None


def storage_driver(environ: dict[str, str] | None = None) -> str:
    """``overlay`` where the kernel has it (it worked on these VMs, on ext4), else ``vfs``
    (a full copy per layer: ~8 GB after four builds); ``MOBILEPLANE_IMAGE_STORAGE_DRIVER``
    chooses."""
    chosen = (environ if environ is not None else dict(os.environ)).get(
        "MOBILEPLANE_IMAGE_STORAGE_DRIVER", ""
    )
    if chosen:
        return chosen
    try:
        kernel = Path("/proc/filesystems").read_text()
    except OSError:
        return "vfs"
    return "overlay" if "\toverlay\n" in kernel else "vfs"


class Tools:
    """buildah, podman and skopeo on the image's own containers-storage (one per driver:
    a store cannot change its driver)."""

    def __init__(self, root: Path, driver: str | None = None) -> None:
        self.driver = driver or storage_driver()
        self.root = root / f"storage-{self.driver}"
        self.runroot = root / f"run-{self.driver}"

    def _store(self) -> list[str]:
        return [
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            self.driver,
        ]

    def buildah(self, *args: str) -> list[str]:
        return ["buildah", *self._store(), *args]

    def podman(self, *args: str) -> list[str]:
        return ["podman", *self._store(), "--log-level", "error", *args]

    def storage_ref(self, ref: str) -> str:
        return f"containers-storage:[{self.driver}@{self.root}+{self.runroot}]{ref}"

    def has_image(self, ref: str) -> bool:
        done = subprocess.run(
            self.buildah("inspect", "--type", "image", ref), capture_output=True, check=False
        )
        return done.returncode == 0

    def labels(self, ref: str) -> dict[str, str]:
        out = _output(self.buildah("inspect", "--type", "image", ref))
        labels: dict[str, str] = json.loads(out)["OCIv1"]["config"].get("Labels") or {}
        return labels

    def run_args(self) -> list[str]:
        """``podman run`` flags for these machines: rlimits below the ones we have.

        Without CAP_SYS_RESOURCE, runc cannot raise RLIMIT_NOFILE/NPROC to podman's defaults
        ("error setting rlimit type 7: operation not permitted"); even NPROC at our own limit
        was refused (type 6), a lower one is not.
        """
        nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], RUN_NOFILE)
        nproc = min(_finite(resource.getrlimit(resource.RLIMIT_NPROC)[0]), RUN_NPROC)
        return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def ensure_tools(progress: Progress, tools: dict[str, str], log: Path) -> None:
    missing = sorted({pkg for tool, pkg in tools.items() if shutil.which(tool) is None})
    if missing:
        install_packages(progress, COMPONENT, missing, log)


def build(
    repo: Path,
    progress: Progress,
    *,
    cache: Path | None = None,
    refresh_base: bool = False,
    rebuild: bool = False,
) -> BuiltImage:
    """Build (or find cached) the base and the image; export the image as an archive."""
    root = image_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    log = root / "logs" / "build.log"
    with _locked(root / ".lock", progress):
        started = time.monotonic()
        ensure_tools(progress, TOOLS, log)
        tools = Tools(root)
        base = p.base_plan()
        if refresh_base or not tools.has_image(base.ref):
            make_base(tools, base, root, progress, log)
        else:
            progress.say(COMPONENT, f"base {base.ref}: cached")
        files = list(collect_inputs(repo))
        revision = git_revision(repo)
        the_plan = p.image_plan(
            version=__version__,
            revision=revision,
            inputs=p.inputs_digest(files),
            base_ref=base.ref,
            created=git_time(repo),
        )
        before = _record(root, the_plan.key)
        if (
            not rebuild
            and not refresh_base
            and before is not None
            and tools.has_image(the_plan.content_tag)
        ):
            # The store's version tag follows the current build, as the archive's does.
            _output(tools.buildah("tag", the_plan.content_tag, the_plan.version_tag))
            _write_record(root, before)
            progress.say(COMPONENT, f"{the_plan.version_tag}: up to date ({before.archive})")
            return before
        built = make_image(tools, the_plan, repo, root, progress, log, no_cache=rebuild)
        _prune(tools, root, built)
        progress.say(COMPONENT, f"built in {time.monotonic() - started:.0f}s")
        return built


def make_base(tools: Tools, base: p.BasePlan, root: Path, progress: Progress, log: Path) -> None:
    """debootstrap (minbase) + Debian's Python, cleaned like the official slim image."""
    if os.geteuid() != 0:
        raise StackError(
            COMPONENT,
            "making the base image needs root (debootstrap, chroot)",
            "run `mobileplane image build` as root, or build the Dockerfile with Docker/BuildKit",
        )
    mirror = os.environ.get("MOBILEPLANE_DEBIAN_MIRROR", p.DEFAULT_DEBIAN_MIRROR)
    security = os.environ.get("MOBILEPLANE_DEBIAN_SECURITY_MIRROR", p.DEFAULT_SECURITY_MIRROR)
    fix = "check the network access to the Debian mirrors (MOBILEPLANE_DEBIAN_MIRROR), retry"
    with tempfile.TemporaryDirectory(dir=root, prefix="base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        progress.run(
            COMPONENT,
            f"debootstrap --variant=minbase {base.release}",
            ["debootstrap", "--variant=minbase", base.release, str(rootfs), mirror],
            log,
            fix=fix,
            timeout=BUILD_TIMEOUT,
        )
        (rootfs / "etc/apt/sources.list").write_text(p.sources_list(base.release, mirror, security))
        # apt's resolver, not debootstrap's (which cannot satisfy python3.11-venv), and the
        # security updates the official image has.
        script = (
            "set -e; apt-get update -q; apt-get -y -q upgrade; "
            f"apt-get install -y -q --no-install-recommends {' '.join(base.packages)}; "
            "apt-get clean"
        )
        progress.run(
            COMPONENT,
            f"apt-get install {' '.join(base.packages)} (in the base)",
            ["chroot", str(rootfs), "/bin/sh", "-c", script],
            log,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": p.BASE_ENV[0][1]},
            fix=fix,
            timeout=BUILD_TIMEOUT,
        )
        _slim(rootfs)
        archive = Path(tmp) / "rootfs.tar"
        progress.run(
            COMPONENT,
            "pack the base's root filesystem",
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(archive), "."],
            log,
            fix="see the log; is the disk full?",
        )
        container = _output(tools.buildah("from", "scratch")).strip()
        try:
            progress.run(
                COMPONENT,
                f"import the base as {base.ref}",
                tools.buildah("add", "--quiet", container, str(archive), "/"),
                log,
                fix="see the log",
            )
            config = [f"--env={k}={v}" for k, v in p.BASE_ENV]
            _output(tools.buildah("config", *config, "--cmd", p.BASE_PYTHON, container))
            _output(tools.buildah("commit", "--quiet", "--rm", container, base.ref))
        except BaseException:
            subprocess.run(tools.buildah("rm", container), capture_output=True, check=False)
            raise


def _slim(rootfs: Path) -> None:
    """What Debian's and Python's slim images leave out: apt's lists and caches, manuals,
    translations, docs (but licences), logs, the stdlib's test suite, the host's DNS."""
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*",
        "var/cache/debconf/*-old",
        "var/log/*.log",
        "var/log/apt/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/locale/*",
        f"usr/lib/{p.BASE_PYTHON}/test",
        "debootstrap",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for doc in (rootfs / "usr/share/doc").rglob("*"):
        if doc.is_file() and doc.name != "copyright":
            doc.unlink()
    for name in ("etc/resolv.conf", "etc/hostname"):
        target = rootfs / name
        if target.exists() or target.is_symlink():
            target.unlink()
        target.write_text("")


def make_image(
    tools: Tools,
    the_plan: p.ImagePlan,
    repo: Path,
    root: Path,
    progress: Progress,
    log: Path,
    *,
    no_cache: bool,
) -> BuiltImage:
    cmd = [
        "bud",
        "--layers",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--pull=never",
        "--file",
        str(repo / "Dockerfile"),
    ]
    if no_cache:
        cmd.append("--no-cache")
    bundle = p.ca_bundle(os.environ, [v for v in _candidates() if Path(v).is_file()])
    if bundle:
        cmd += ["--secret", f"id=pip-ca,src={bundle}"]
    for name, value in the_plan.build_args.items():
        cmd += ["--build-arg", f"{name}={value}"]
    cmd += ["--label", f"io.mobileplane.image.key={the_plan.key}"]
    for tag in the_plan.tags:
        cmd += ["--tag", tag]
    progress.run(
        COMPONENT,
        f"buildah bud {the_plan.version_tag} (dependencies from PyPI)",
        tools.buildah(*cmd, str(repo)),
        log,
        fix="read the log's last step; a pip error needs the network to PyPI, then retry",
        timeout=BUILD_TIMEOUT,
    )
    archive = root / the_plan.archive_name
    archive.unlink(missing_ok=True)
    progress.run(
        COMPONENT,
        f"export {archive.name}",
        [
            "skopeo",
            "copy",
            "--quiet",
            "--additional-tag",
            the_plan.content_tag,
            tools.storage_ref(the_plan.content_tag),
            f"docker-archive:{archive}:{the_plan.version_tag}",
        ],
        log,
        fix="see the log; is the disk full?",
    )
    progress.say(COMPONENT, "measuring the image (unpacked and gzip-compressed layers)")
    unpacked, compressed = measure(archive)
    built = BuiltImage(
        archive=str(archive),
        tags=list(the_plan.tags),
        key=the_plan.key,
        version=the_plan.version,
        revision=the_plan.revision,
        base=the_plan.build_args["BASE"],
        unpacked_bytes=unpacked,
        compressed_bytes=compressed,
    )
    _write_record(root, built)
    return built


def _record(root: Path, key: str) -> BuiltImage | None:
    """The build of this key, if its archive is still there."""
    try:
        built = BuiltImage(**json.loads((root / "records" / f"{key}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return built if Path(built.archive).exists() else None


def _write_record(root: Path, built: BuiltImage) -> None:
    text = json.dumps(asdict(built), indent=2) + "\n"
    (root / "records").mkdir(exist_ok=True)
    (root / "records" / f"{built.key}.json").write_text(text)
    (root / "current.json").write_text(text)


def measure(archive: Path) -> tuple[int, int]:
    """The layers' bytes as unpacked tars, and gzip-compressed (level 6, as registries get)."""
    unpacked = compressed = 0
    with tarfile.open(archive) as tar:
        manifest = json.load(_member(tar, "manifest.json"))
        for layer in manifest[0]["Layers"]:
            stream = _member(tar, layer)
            gz = zlib.compressobj(6, zlib.DEFLATED, 31)
            while chunk := stream.read(1 << 20):
                unpacked += len(chunk)
                compressed += len(gz.compress(chunk))
            compressed += len(gz.flush())
    return unpacked, compressed


def collect_inputs(repo: Path) -> Iterator[p.InputFile]:
    """The files the build sees (:func:`plan.in_context`) with their content's digests."""
    for top in p.CONTEXT_PATHS + p.RECIPE_PATHS:
        start = repo / top
        paths = [start] if not start.is_dir() or start.is_symlink() else sorted(start.rglob("*"))
        for path in paths:
            rel = path.relative_to(repo).as_posix()
            if top in p.CONTEXT_PATHS and not p.in_context(rel):
                continue
            if path.is_symlink():
                yield p.InputFile(rel, "symlink", os.readlink(path))
            elif path.is_file():
                kind = "executable" if os.access(path, os.X_OK) else "file"
                yield p.InputFile(rel, kind, _sha256(path))


def git_revision(repo: Path) -> str:
    """HEAD's commit, with ``-dirty`` when the build's inputs differ from it."""
    head = _output(["git", "-C", str(repo), "rev-parse", "HEAD"]).strip()
    paths = [*p.CONTEXT_PATHS, *p.RECIPE_PATHS]
    changed = _output(["git", "-C", str(repo), "status", "--porcelain", "--", *paths]).strip()
    return f"{head}-dirty" if changed else head


def git_time(repo: Path) -> str:
    return _output(["git", "-C", str(repo), "log", "-1", "--format=%cI"]).strip()


def _candidates() -> list[str]:
    return [os.environ.get(v, "") for v in p.CA_BUNDLE_VARIABLES] + [p.DEFAULT_CA_BUNDLE]


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    f = tar.extractfile(name)
    if f is None:
        raise StackError(COMPONENT, f"{name} is missing from the archive", "rebuild: --rebuild")
    return f


def _prune(tools: Tools, root: Path, built: BuiltImage) -> None:
    """Keep the newest archives and their images; untagged layers stay (the build cache)."""
    archives = sorted(root.glob("mobileplane-*.docker.tar"), key=lambda a: a.stat().st_mtime)
    old = [a for a in archives if str(a) != built.archive]
    for archive in old[: max(0, len(old) - KEEP_ARCHIVES)]:
        archive.unlink(missing_ok=True)
    kept = {a.name for a in root.glob("mobileplane-*.docker.tar")}
    listed = _output(tools.buildah("images", "--format", "{{.Name}}:{{.Tag}}"))
    for ref in listed.split():
        tag = ref.rsplit(":", 1)[-1]
        if tag.startswith("content-") and not any(tag.removeprefix("content-") in k for k in kept):
            subprocess.run(tools.buildah("rmi", ref), capture_output=True, check=False)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            h.update(chunk)
    return h.hexdigest()


def _finite(value: int) -> int:
    return RUN_NPROC if value == resource.RLIM_INFINITY else value


def _output(cmd: Sequence[str]) -> str:
    done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StackError(
            COMPONENT,
            f"{' '.join(cmd[:3])} … failed (exit {done.returncode}): {done.stderr.strip()[-500:]}",
            "see the message above; `mobileplane image build --rebuild` starts afresh",
        )
    return done.stdout


@contextlib.contextmanager
def _locked(path: Path, progress: Progress) -> Iterator[None]:
    """One build at a time per cache (a test fixture and a developer may race)."""
    with path.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.say(COMPONENT, "another build is running; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield
