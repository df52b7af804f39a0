"""The MobilePlatform CRD, generated from the spec models.

Pydantic's JSON schema is close to what Kubernetes wants but not quite: Kubernetes needs a
*structural* schema (no ``$ref``, no ``anyOf`` of null for optional fields, no ``title``), and
object defaults must be spelled out so the API server can default nested fields. This module
converts, adds the CRD's names, printer columns and status subresource, and renders YAML.

``python -m mobileplane.operator.crdgen`` prints the CRD; ``crds/mobileplatform.yaml`` is its
output, and a unit test fails when the two differ.
"""

from __future__ import annotations

import sys
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

from mobileplane.operator.spec import MobilePlatformSpec, MobilePlatformStatus

GROUP = "mobileplane.io"
VERSION = "v1alpha1"
KIND = "MobilePlatform"
PLURAL = "mobileplatforms"
DESCRIPTION = (
    "A MobilePlatform is the backend of one mobile app: its services, database, cache and "
    "media bucket, provisioned and watched by the mobileplane operator."
)

#: Schema keywords that Kubernetes' structural schemas accept and we use.
KEPT = {
    "type",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "default",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
}


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``root``, by class name (pydantic's ``$defs`` keys)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for field in tp.model_fields.values():
                visit(field.annotation)
            return
        for arg in get_args(tp):
            visit(arg)
        origin = get_origin(tp)
        if origin is not None and origin is not tp:
            visit(origin)

    visit(root)
    return found


def _field_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Defaults of ``model``'s fields by alias, default factories evaluated."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if field.default_factory is not None:
            value = field.default_factory()  # type: ignore[call-arg]
        elif field.is_required() or field.default is None:
            continue
        else:
            value = field.default
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        elif hasattr(value, "value"):  # an enum member
            value = value.value
        if value == []:
            # Empty lists are left out rather than defaulted, as kubectl would. Empty objects
            # are defaulted ({}), so that their own fields' defaults apply and CEL rules can
            # rely on them being present.
            continue
        out[alias] = value
    return out


class _Converter:
    def __init__(self, root: type[BaseModel], mode: str) -> None:
        raw = root.model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
        self.defs: dict[str, Any] = raw.pop("$defs", {})
        self.root = raw
        self.models = _models(root)
        self.root_name = root.__name__

    def convert(self) -> dict[str, Any]:
        return self._node(self.root, self.root_name)

    def _resolve(self, node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            merged = {**self.defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return merged, name
        for key in ("anyOf", "oneOf", "allOf"):
            options = [o for o in node.get(key, []) if o.get("type") != "null"]
            if len(options) == 1:
                inner, name = self._resolve(options[0])
                rest = {k: v for k, v in node.items() if k != key}
                return {**inner, **rest}, name
        return node, None

    def _node(self, node: dict[str, Any], model_name: str | None = None) -> dict[str, Any]:
        node, ref_name = self._resolve(node)
        model_name = ref_name or model_name
        out: dict[str, Any] = {k: v for k, v in node.items() if k in KEPT}
        if out.get("default") is None:
            out.pop("default", None)
        # JSON Schema 2020-12 (pydantic) gives exclusive bounds as numbers; Kubernetes'
        # OpenAPI v3 schema, like draft 4, wants the bound plus a boolean flag.
        for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(exclusive), int | float) and not isinstance(out[exclusive], bool):
                out[bound] = out.pop(exclusive)
                out[exclusive] = True
        if "properties" in node:
            out["type"] = "object"
            model = self.models.get(model_name or "")
            defaults = _field_defaults(model) if model else {}
            props = {}
            for key, sub in node["properties"].items():
                child = self._node(sub)
                if key in defaults and "default" not in child:
                    child["default"] = defaults[key]
                props[key] = child
            out["properties"] = props
        if "items" in node:
            out["items"] = self._node(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self._node(node["additionalProperties"])
        return out


def structural_schema(model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
    return _Converter(model, mode).convert()


def custom_resource_definition(
    *,
    kind: str,
    plural: str,
    short_name: str,
    description: str,
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    printer_columns: list[dict[str, str]],
) -> dict[str, Any]:
    """A namespaced CRD of ``GROUP/VERSION`` in category ``mobileplane``: one served and
    stored version with the status subresource, its schema converted from the models."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": ["mobileplane"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *printer_columns,
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": structural_schema(spec_model),
                                "status": structural_schema(status_model, mode="serialization"),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd(crd: dict[str, Any], source: str, module: str) -> str:
    """The CRD as YAML, under a header naming the models and the command that made it."""
    header = (
        f"# Generated from {source} by `python -m {module}`.\n"
        "# Do not edit by hand: change the models and regenerate.\n"
    )
    return header + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)


def crd() -> dict[str, Any]:
    ready = '.status.conditions[?(@.type=="Ready")]'
    return custom_resource_definition(
        kind=KIND,
        plural=PLURAL,
        short_name="mp",
        description=DESCRIPTION,
        spec_model=MobilePlatformSpec,
        status_model=MobilePlatformStatus,
        printer_columns=[
            {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status"},
            {"name": "Reason", "type": "string", "jsonPath": f"{ready}.reason"},
            {"name": "Gateway", "type": "string", "jsonPath": ".status.gatewayURL"},
        ],
    )


def render() -> str:
    return render_crd(crd(), "operator/spec.py", "mobileplane.operator.crdgen")


if __name__ == "__main__":
    sys.stdout.write(render())
