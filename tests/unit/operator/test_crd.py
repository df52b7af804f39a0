"""The MobilePlatform CRD is generated from the spec models and stays in step with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mobileplane.operator import crdgen
from mobileplane.operator.spec import MobilePlatformSpec

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "crds" / "mobileplatform.yaml"
EXAMPLES = [  # MobilePlatform examples (the folder also holds MobileRelease ones)
    p
    for p in sorted((ROOT / "crds" / "examples").glob("*.yaml"))
    if yaml.safe_load(p.read_text())["kind"] == "MobilePlatform"
]


def test_committed_crd_is_the_generated_one() -> None:
    assert CRD_FILE.read_text() == crdgen.render(), (
        "crds/mobileplatform.yaml is stale: run "
        "`.venv/bin/python -m mobileplane.operator.crdgen > crds/mobileplatform.yaml`"
    )


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for key, child in node.get("properties", {}).items():
        out += _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def _schema() -> dict[str, Any]:
    version = crdgen.crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        assert "type" in node or path == "", f"{path} has no type"
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "title"):
            assert banned not in node, f"{path} has {banned}"
        assert node.get("additionalProperties") is not False, f"{path}: additionalProperties"


def test_every_spec_and_status_field_has_a_description() -> None:
    missing = [
        path
        for path, node in _walk(_schema())
        if path.startswith((".spec.", ".status."))
        and not path.endswith("[]")
        and not node.get("description")
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "default"),
    [
        pytest.param(".spec.services.gateway.replicas", 1, id="replicas"),
        pytest.param(".spec.database.deletionPolicy", "Retain", id="deletion-policy"),
        pytest.param(".spec.database.mode", "InCluster", id="database-mode"),
        pytest.param(".spec.auth.signingAlgorithm", "ES256", id="algorithm"),
        pytest.param(
            ".spec.services.gateway.resources",
            {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            id="factory-default",
        ),
        pytest.param(".spec.push", {}, id="empty-object-default"),
    ],
)
def test_defaults(path: str, default: object) -> None:
    nodes = dict(_walk(_schema()))
    assert nodes[path]["default"] == default


def test_names_printer_columns_and_status_subresource() -> None:
    spec = crdgen.crd()["spec"]
    assert spec["names"]["shortNames"] == ["mp"]
    assert "mobileplane" in spec["names"]["categories"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Reason", "Gateway", "Age"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_parse_with_the_operator_models(example: Path) -> None:
    obj = yaml.safe_load(example.read_text())
    spec = MobilePlatformSpec.model_validate(obj["spec"])
    assert spec.app.display_name


def test_the_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        MobilePlatformSpec.model_validate({"app": {"displayName": "x"}, "nope": 1})
