"""The MobileRelease CRD, generated from :mod:`.spec` with the operator's converter.

``python -m mobileplane.rollout.crdgen`` prints it; ``crds/mobilerelease.yaml`` is its
output, and a unit test fails when the two differ.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from mobileplane.operator.crdgen import GROUP, VERSION, structural_schema
from mobileplane.rollout.spec import MobileReleaseSpec, MobileReleaseStatus

KIND = "MobileRelease"
PLURAL = "mobilereleases"
DESCRIPTION = (
    "A MobileRelease is a staged rollout of one app version on one platform: the release "
    "controller walks its steps, gating on crash-free rates, and moves its feature flags and "
    "store rollout with it."
)


def crd() -> dict[str, Any]:
    spec = structural_schema(MobileReleaseSpec)
    status = structural_schema(MobileReleaseStatus, mode="serialization")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["mrel"],
                "categories": ["mobileplane"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Version", "type": "string", "jsonPath": ".spec.app.version"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep"},
                        {"name": "Weight", "type": "integer", "jsonPath": ".status.weight"},
                        {
                            "name": "Crash-free",
                            "type": "number",
                            "jsonPath": ".status.lastAnalysis.crashFreeSessions",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": DESCRIPTION,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = (
        "# Generated from rollout/spec.py by `python -m mobileplane.rollout.crdgen`.\n"
        "# Do not edit by hand: change the models and regenerate.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    sys.stdout.write(render())
