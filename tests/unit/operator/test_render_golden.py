"""Golden files: the full rendering of each example, reviewed as YAML.

A change to the renderer shows up as a diff of ``golden/<example>.yaml``; review it like code.
Regenerate after an intended change with::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/operator/test_render_golden.py

Inputs are fixed (see ``render_fixtures``): namespace, uid, a fake password, a stored key set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_fixtures import EXAMPLES, example_input

from mobileplane.operator.render import render

GOLDEN = Path(__file__).resolve().parent / "golden"


class _GoldenDumper(yaml.SafeDumper):
    """Multi-line strings (PEMs, JSON) as literal blocks; no anchors for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_GoldenDumper.add_representer(str, _str)


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(
        objects, Dumper=_GoldenDumper, sort_keys=False, width=100, explicit_start=True
    )


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_rendering_matches_the_golden_file(example: str) -> None:
    path = GOLDEN / f"{example}.yaml"
    actual = to_yaml(render(example_input(example)))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_text()
    assert actual == expected, (
        f"rendering of {example} differs from {path.name}; if intended, regenerate with "
        "UPDATE_GOLDEN=1 and review the diff"
    )
    # The golden file is valid YAML holding exactly the rendered objects.
    assert list(yaml.safe_load_all(expected)) == render(example_input(example))
