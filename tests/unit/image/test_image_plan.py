"""The image's pure decisions: tags, labels, cache keys, the build context, the CA bundle.

Also ties the Dockerfile, .dockerignore and the chart to what the code assumes (uid, base,
context, entrypoint subcommands).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from mobileplane.cli import main
from mobileplane.image import plan
from mobileplane.image.plan import InputFile
from mobileplane.operator.render.pods import APP_UID

ROOT = Path(__file__).resolve().parents[3]
BASE = "localhost/mobileplane-base:bookworm-0123456789ab"
FILES = (
    InputFile("pyproject.toml", "file", "a" * 64),
    InputFile("mobileplane/cli.py", "file", "b" * 64),
    InputFile("mobileplane/operator", "symlink", "../operator"),
)


def _plan(**changes: str) -> plan.ImagePlan:
    args = {
        "version": "0.1.0",
        "revision": "c0ffee",
        "inputs": plan.inputs_digest(FILES),
        "base_ref": BASE,
        "created": "2026-12-02T10:00:00+00:00",
    }
    args.update(changes)
    return plan.image_plan(**args)


# -- tags and labels --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "repository", "version_tag"),
    [
        pytest.param("0.1.0", plan.REPOSITORY, "ghcr.io/mobileplane/mobileplane:0.1.0", id="chart"),
        pytest.param("1.2.3", plan.REPOSITORY, "ghcr.io/mobileplane/mobileplane:1.2.3", id="bump"),
        pytest.param("0.1.0", "registry.local/mp", "registry.local/mp:0.1.0", id="mirror"),
    ],
)
def test_tags_are_the_version_then_the_content(
    version: str, repository: str, version_tag: str
) -> None:
    p = plan.image_plan(
        version=version,
        revision="r",
        inputs="i",
        base_ref=BASE,
        created="t",
        repository=repository,
    )
    assert p.version_tag == version_tag
    assert p.content_tag == f"{repository}:content-{p.key[:12]}"
    assert re.fullmatch(r"[\w][\w.-]{0,127}", p.content_tag.rsplit(":", 1)[1])
    assert p.archive_name == f"mobileplane-{version}-{p.key[:12]}.docker.tar"


def test_the_chart_and_the_crd_name_the_version_tag() -> None:
    values = yaml.safe_load((ROOT / "charts/mobileplane/values.yaml").read_text())
    chart = yaml.safe_load((ROOT / "charts/mobileplane/Chart.yaml").read_text())
    from mobileplane import __version__
    from mobileplane.operator.spec import Image

    assert values["image"]["repository"] == plan.REPOSITORY == Image().repository
    assert chart["appVersion"] == __version__ == Image().tag
    assert _plan(version=__version__).version_tag == f"{plan.REPOSITORY}:{Image().tag}"


def test_labels_carry_source_version_revision_and_key() -> None:
    p = _plan()
    assert p.labels["org.opencontainers.image.source"] == plan.SOURCE_URL
    assert p.labels["org.opencontainers.image.version"] == "0.1.0"
    assert p.labels["org.opencontainers.image.revision"] == "c0ffee"
    assert p.labels["org.opencontainers.image.base.name"] == BASE
    assert p.labels["io.mobileplane.image.key"] == p.key
    assert p.build_args == {
        "BASE": BASE,
        "VERSION": "0.1.0",
        "REVISION": "c0ffee",
        "CREATED": "2026-12-02T10:00:00+00:00",
        "SOURCE": plan.SOURCE_URL,
    }


# -- cache keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "rebuilds"),
    [
        pytest.param({}, False, id="nothing"),
        pytest.param({"revision": "deadbeef"}, False, id="a-commit-without-input-changes"),
        pytest.param({"created": "2027-01-01T00:00:00+00:00"}, False, id="commit-time"),
        pytest.param({"version": "0.2.0"}, True, id="version"),
        pytest.param({"base_ref": "localhost/mobileplane-base:x"}, True, id="base"),
        pytest.param({"inputs": "other"}, True, id="inputs"),
        pytest.param({"source": "https://example.org/fork"}, True, id="source-label"),
    ],
)
def test_image_key(change: dict[str, str], rebuilds: bool) -> None:
    assert (_plan(**change).key != _plan().key) is rebuilds


@pytest.mark.parametrize(
    ("files", "same"),
    [
        pytest.param(tuple(reversed(FILES)), True, id="order"),
        pytest.param(
            (FILES[0], InputFile("mobileplane/cli.py", "file", "c" * 64), FILES[2]),
            False,
            id="content",
        ),
        pytest.param(
            (FILES[0], InputFile("mobileplane/cli.py", "executable", "b" * 64), FILES[2]),
            False,
            id="mode",
        ),
        pytest.param(
            (FILES[0], FILES[1], InputFile("mobileplane/operator", "symlink", "../other")),
            False,
            id="link-target",
        ),
        pytest.param(FILES[:2], False, id="a-file-removed"),
        pytest.param((*FILES, InputFile("services/new.py", "file", "d" * 64)), False, id="added"),
    ],
)
def test_inputs_digest(files: tuple[InputFile, ...], same: bool) -> None:
    assert (plan.inputs_digest(files) == plan.inputs_digest(FILES)) is same


@pytest.mark.parametrize(
    ("kwargs", "same"),
    [
        pytest.param({"packages": reversed(plan.BASE_PACKAGES)}, True, id="order"),
        pytest.param({"packages": (*plan.BASE_PACKAGES, "netbase")}, True, id="repeats"),
        pytest.param({"packages": (*plan.BASE_PACKAGES, "curl")}, False, id="a-package"),
        pytest.param({"release": "trixie"}, False, id="release"),
        pytest.param({"recipe": plan.BASE_RECIPE + 1}, False, id="recipe"),
    ],
)
def test_base_key(kwargs: dict[str, object], same: bool) -> None:
    other = plan.base_plan(**kwargs)  # type: ignore[arg-type]
    assert (other.key == plan.base_plan().key) is same
    assert other.ref == f"localhost/mobileplane-base:{other.release}-{other.key[:12]}"


# -- the build context --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("mobileplane/cli.py", True),
        ("operator/render/pods.py", True),
        ("services/auth/templates/login.html", True),
        ("mobileplane/__pycache__/cli.cpython-311.pyc", False),
        ("services/kit/stray.pyc", False),
        ("tests/unit/image/test_image_plan.py", False),
        (".venv/bin/python", False),
        ("docs/development.md", False),
        ("mobileplane.egg-info/PKG-INFO", False),
    ],
)
def test_in_context(path: str, sent: bool) -> None:
    assert plan.in_context(path) is sent


def test_dockerignore_lets_in_exactly_the_context_paths() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    assert tuple(ln[1:] for ln in lines if ln.startswith("!")) == plan.CONTEXT_PATHS
    excluded = [ln for ln in lines[1:] if not ln.startswith("!")]
    assert excluded == [f"**/{n}" for n in plan.IGNORED_NAMES] + [
        f"**/*{s}" for s in plan.IGNORED_SUFFIXES
    ]


# -- the CA bundle handed to pip ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "exists", "chosen"),
    [
        pytest.param({}, [], None, id="nothing"),
        pytest.param({}, [plan.DEFAULT_CA_BUNDLE], plan.DEFAULT_CA_BUNDLE, id="debian-default"),
        pytest.param({"PIP_CERT": "/a.pem"}, ["/a.pem"], "/a.pem", id="pip-cert"),
        pytest.param(
            {"PIP_CERT": "/gone.pem", "SSL_CERT_FILE": "/b.pem"},
            ["/b.pem", plan.DEFAULT_CA_BUNDLE],
            "/b.pem",
            id="skips-missing-files",
        ),
        pytest.param({"REQUESTS_CA_BUNDLE": ""}, [], None, id="empty-variable"),
    ],
)
def test_ca_bundle(environ: dict[str, str], exists: list[str], chosen: str | None) -> None:
    assert plan.ca_bundle(environ, exists) == chosen


# -- the Dockerfile and what runs it ------------------------------------------------------------


def test_dockerfile_matches_the_renderer_and_the_base() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert f"USER {APP_UID}:{APP_UID}" in text
    assert f"--uid {APP_UID} --gid {APP_UID}" in text
    base = re.search(r"^ARG BASE=(\S+)$", text, re.M)
    assert base is not None
    minor = plan.BASE_PYTHON.removeprefix("python")
    assert re.fullmatch(
        rf"python:{re.escape(minor)}-slim-{plan.DEBIAN_RELEASE}@sha256:[0-9a-f]{{64}}",
        base.group(1),
    )
    assert 'ENTRYPOINT ["mobileplane"]' in text


def _command_exists(args: list[str]) -> bool:
    group: click.Command = main
    for word in args:
        if word.startswith("-"):
            return True
        if not isinstance(group, click.Group) or word not in group.commands:
            return False
        group = group.commands[word]
    return not isinstance(group, click.Group)


@pytest.mark.parametrize(
    "template", ["templates/deployment.yaml", "templates/release-controller.yaml"]
)
def test_the_charts_pods_run_commands_the_entrypoint_has(template: str) -> None:
    text = (ROOT / "charts/mobileplane" / template).read_text()
    found = re.search(r"^\s*args: \[(.*)\]$", text, re.M)
    assert found is not None
    args = [a.strip() for a in found.group(1).split(",")]
    assert _command_exists(args), args


def test_nothing_imports_kubernetes_aio() -> None:
    """The Dockerfile drops kubernetes/aio (68 MB) from the image."""
    pattern = re.compile(r"kubernetes\.aio|from kubernetes import .*\baio\b")
    for folder in ("mobileplane", "operator", "rollout", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not pattern.search(path.read_text()), path


def test_storage_driver_can_be_chosen() -> None:
    from mobileplane.image.builder import storage_driver

    assert storage_driver({"MOBILEPLANE_IMAGE_STORAGE_DRIVER": "vfs"}) == "vfs"
    assert storage_driver({}) in {"overlay", "vfs"}
