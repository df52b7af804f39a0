"""The Tiltfile cannot run here (no Docker, no kind), so check what it points at exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TILTFILE = (ROOT / "Tiltfile").read_text()


def test_every_path_in_the_tiltfile_exists() -> None:
    paths = set(re.findall(r"'((?:crds|charts|scripts|tests)/[^' ]+|Dockerfile)'", TILTFILE))
    assert {"Dockerfile", "charts/mobileplane", "crds/examples/minimal.yaml"} <= paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == []


def test_the_resources_it_names_are_the_charts_deployments() -> None:
    named = set(re.findall(r"k8s_resource\(\s*'([^']+)'", TILTFILE))
    templates = "".join(p.read_text() for p in (ROOT / "charts/mobileplane/templates").glob("*"))
    deployments = set(re.findall(r"kind: Deployment\nmetadata:\n  name: ([\w-]+)", templates))
    platform = re.search(
        r"^  name: ([\w-]+)$", (ROOT / "crds/examples/minimal.yaml").read_text(), re.M
    )
    assert platform is not None
    assert named == deployments | {platform.group(1)}


def test_the_image_it_builds_is_the_one_the_chart_names() -> None:
    image = re.search(r"^IMAGE = '([^']+)'", TILTFILE, re.M)
    values = (ROOT / "charts/mobileplane/values.yaml").read_text()
    assert image is not None and f"repository: {image.group(1)}" in values
